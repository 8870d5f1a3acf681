// The render driver's DSP (faust/arch/render_main.cpp) for the runtime: `--model FILE` names the IR document,
// played in ADAC_RUNTIME_REAL (float or double). A refused document: its error on stderr, exit status 2.
#include <cstdio>
#include <cstdlib>

#include "adac/runtime/faust_dsp.h"

#ifndef ADAC_RUNTIME_REAL
#define ADAC_RUNTIME_REAL float
#endif

dsp* adac_create_dsp(const char* model)
{
    static adac::runtime::Model loaded;
    if (!model) {
        std::fprintf(stderr, "adac: error: the runtime's renderer needs --model FILE\n");
        std::exit(2);
    }
    if (!loaded.plan) {
        try {
            loaded = adac::runtime::loadFile(model);
        } catch (const adac::runtime::Error& e) {
            std::fprintf(stderr, "adac: error: %s\n", e.what());
            std::exit(2);
        }
    }
    return new adac::runtime::FaustDsp<ADAC_RUNTIME_REAL>(loaded);
}
