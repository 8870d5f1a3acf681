/*
 * adac render architecture, DSP part: the FAUST-generated class and a factory.
 * Linked with render_main.cpp (compiled once), so a model compiles only its own code.
 */
#include "faust/gui/meta.h"
#include "faust/gui/UI.h"
#include "faust/dsp/dsp.h"

<<includeIntrinsic>>

<<includeclass>>

dsp* adac_create_dsp(const char*) { return new mydsp(); }
