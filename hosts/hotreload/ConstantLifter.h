// Constant lifting: the fast path of hot reload.
//
// During training, successive publishes of a model usually differ only in floating-point
// coefficients (matrix entries, gains, filter coefficients); the structure (delay lengths, wiring)
// stays. The host therefore compiles a *lifted* version of the code in which every liftable float
// literal is replaced by a hidden control (`nentry`) initialised to the literal's value. The
// code with those literals replaced by a placeholder, comments removed, is the program's
// *skeleton*. When a new file has the same skeleton as the newest compiled DSP, nothing is
// compiled: the new values are written into the running DSP's controls (its state, the reverb
// tail, continues). Otherwise the lifted code is compiled as usual (and the plain code if the
// lifted one does not compile, e.g. a lifted literal turned out to be a delay length).
//
// A float literal (one with a '.' or an exponent; integers are never lifted) is lifted unless it
// is inside a string or comment, inside the arguments of a UI primitive (hslider, nentry, ...), of
// a delay `@(...)`, of a table or waveform, or of an iteration construct (par, seq, sum, prod).
// A lifted constant of a definition the program's `process` never reaches (e.g. the other-rate
// lowerings `adac_process_<rate>` of a built .dsp) has no control in the compiled DSP: FAUST drops
// the widgets of unused code. It still belongs to the skeleton and to the values; nothing plays it.
#pragma once

#include <string>
#include <vector>

namespace adac {

struct LiftedCode {
    std::string skeleton;        // code without comments, lifted literals replaced by '#'
    std::string code;            // compilable code with the hidden controls (== the input if none)
    std::vector<double> values;  // the lifted literals, in order of appearance
    bool lifted() const { return !values.empty(); }
};

// Label (and FAUST address component) of the hidden control of lifted constant i.
constexpr const char* kLiftPrefix = "adac_hot_k";
constexpr const char* kLiftGroup = "adac_hot";

LiftedCode liftConstants(const std::string& code);

}  // namespace adac
