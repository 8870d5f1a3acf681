#pragma once
// adac: factory of the model's DSP, defined in the generated FaustDsp.cpp (its own translation unit:
// a model change recompiles that file only and relinks).
#include <memory>

#include "faust/dsp/dsp.h"

std::unique_ptr<dsp> adacCreateFaustDsp();
