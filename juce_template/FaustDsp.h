#pragma once
// adac: factory of the model's DSP (defined in the generated FaustDsp.cpp).
#include <memory>

#include "faust/dsp/dsp.h"

std::unique_ptr<dsp> adacCreateFaustDsp();
