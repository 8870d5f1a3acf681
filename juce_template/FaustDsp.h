#pragma once
// adac: the model's DSP classes, defined in the generated FaustDsp.cpp (its own translation unit:
// a model change recompiles that file only and relinks).
#include <memory>

#include "faust/dsp/dsp.h"

// How the plugin follows the host's sample rate (the manifest's sample_rate, docs/sample_rate.md).
struct AdacSampleRates {
    enum class Mode {
        any,        // one class at every rate (delays in samples: the sound changes with the rate)
        relowered,  // one class per accepted rate, the model lowered again for it; other rates are refused
        resample    // the model's class at its own rate; the plugin resamples the host's audio to it and back
    };
    Mode mode;
    int modelRate;     // the rate the model was trained at (0 with Mode::any)
    const int* rates;  // the accepted host rates (certified lowerings, or the resampler's), ascending
    int count;
};
extern const AdacSampleRates adacSampleRates;

// The model's DSP for a host rate: its lowering for that rate (relowered), the model's class (resample,
// any rate: it runs at modelRate) or nullptr (relowered: no certified lowering for that rate).
std::unique_ptr<dsp> adacCreateFaustDsp(int sampleRate);
