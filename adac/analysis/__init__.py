"""Time-domain and frequency-domain analysis of an IR as realised: responses, simulation, reverberation
time, and what the macro-controls mean."""
