"""Model factory of the AdacFDN example plugin: an 8-line feedback delay network reverb.

    build_model(fs) -> flamo.processor.system.Shell   (stereo: 2 inputs, 2 outputs)

Structure (module paths as they appear in adac's IR and error messages):

    core                      Parallel, summed
      branchA                 Series: the reverberator
        input_gain            Gain (8 x 2)                       trained
        feedback_loop         Recursion
          feedforward         parallelDelay (8 lines, integer)   fixed
          feedback            Series
            mixing_matrix     Matrix (orthogonal, 8 x 8)         trained (colorless FDN)
            attenuation       parallelGain: gain for T60         fixed by design
            damping           parallelBiquad: lowpass per line   fixed by design
        output_gain           Gain (2 x 8)                       trained
      branchB                 Gain (2 x 2): the direct path      fixed (diagonal)

``examples/train_fdn.py`` trains the matrix and the input/output gains with
FLAMO's colorless-FDN objective and writes ``checkpoint.pt``.
"""
from collections import OrderedDict

import torch
from flamo.processor import dsp, system

N_LINES = 8
DELAYS = [809, 877, 937, 1049, 1151, 1249, 1373, 1499]  # samples at 48 kHz, mutually prime
T60 = 1.6  # seconds, broadband
DAMPING_CUTOFF = 0.45  # per-line lowpass cutoff, fraction of Nyquist
DRY_GAIN = 0.5


def build_model(fs: int = 48000, nfft: int = 2 ** 14, alias_decay_db: float = 0.0) -> system.Shell:
    common = {"nfft": nfft, "alias_decay_db": alias_decay_db, "device": "cpu"}
    scale = fs / 48000
    samples = torch.tensor([round(d * scale) for d in DELAYS], dtype=torch.float32)

    delays = dsp.parallelDelay(size=(N_LINES,), max_len=int(samples.max()) + 1, isint=True, fs=fs, **common)
    delays.assign_value(delays.sample2s(samples))
    mixing = dsp.Matrix(size=(N_LINES, N_LINES), matrix_type="orthogonal", requires_grad=True, **common)
    attenuation = dsp.parallelGain(size=(N_LINES,), **common)
    attenuation.assign_value(10 ** (-3 * samples / (fs * T60)))
    damping = dsp.parallelBiquad(size=(N_LINES,), n_sections=1, filter_type="lowpass", fs=fs, **common)
    with torch.no_grad():
        damping.param[:, 0, :] = DAMPING_CUTOFF
        damping.param[:, 1, :] = 1.0  # 0 dB in the pass band
    loop = system.Recursion(delays, system.Series(OrderedDict(mixing_matrix=mixing, attenuation=attenuation, damping=damping)))
    reverb = system.Series(OrderedDict(
        input_gain=dsp.Gain(size=(N_LINES, 2), requires_grad=True, **common),
        feedback_loop=loop,
        output_gain=dsp.Gain(size=(2, N_LINES), requires_grad=True, **common),
    ))
    dry = dsp.Gain(size=(2, 2), **common)
    dry.assign_value(DRY_GAIN * torch.eye(2))
    return system.Shell(system.Parallel(reverb, dry, sum_output=True))
