// Constant lifting: the fast path of hot reload.
//
// During training, successive publishes of a model usually differ only in numbers: floating-point
// coefficients (matrix entries, gains, filter coefficients), now and then a delay length, and the
// metadata and slider defaults that follow them (the rt60 control's trained T60). The host therefore
// compiles a *lifted* version of the code in which every liftable constant is replaced by a hidden
// control (`nentry`) initialised to the constant's value. The code with those constants (and the
// numbers that do not change the DSP, below) replaced by placeholders, comments removed, is the
// program's *skeleton*. When a new file has the same skeleton as the newest compiled DSP (and its
// delay lengths fit the compiled capacities), nothing is compiled: the new values are written into
// the running DSP's controls (its state, the reverb tail, continues). Otherwise the lifted code is
// compiled as usual (and the plain code if the lifted one does not compile, e.g. a lifted float
// literal turned out to be a delay length).
//
// Lifted (a hidden control each, skeleton placeholder '#'):
//  - a float literal (one with a '.' or an exponent) unless it is inside a string or comment, inside
//    the arguments of a UI primitive (hslider, nentry, ...), of a delay `@(...)`, of a table or
//    waveform, or of an iteration construct (par, seq, sum, prod);
//  - a delay length: `@(N)` whose argument is one integer literal N >= kMinLiftedDelay (FAUST's
//    threshold between shift-register and ring-buffer delays, -mcd 16: a longer constant delay is a
//    ring buffer anyway, so a variable one costs the same per sample). It becomes
//    `@(int(adac_hot_k<i>))`, a control of range [0, C] with the *capacity* C = the smallest power of
//    two >= 2N: FAUST sizes the ring buffer for C, and a later length up to C is an update. A length
//    beyond C (or below kMinLiftedDelay: a different skeleton) compiles, with capacities from the new
//    lengths. Skeleton placeholder `@(%)`. Two lifted lengths that differ by one (an FDN line read in
//    its loop one sample short, `@(d-1)`, and at its output, `@(d)`) are one control: the shorter is
//    written `adac_hot_k<j> = adac_hot_k<i> - 1`, so FAUST still reads the line once per sample. The
//    pairings end the skeleton (`paired delays: j=i-1 ...`): a publish that breaks one compiles.
// Not part of the skeleton (a change is no compile), not lifted either:
//  - a number that is a whole argument of hslider/vslider/nentry (its default, min, max or step): the
//    running DSP keeps the ranges it was compiled with (FAUST never clamps a control's value in the DSP;
//    a delay line or table whose length a slider drives is sized from the compiled range), and a new
//    default is played by the engine when the parameter was never set (`widgets`). Placeholder '$'.
//  - the value of a `declare adac_<key> "..."` (adac's own metadata, e.g. adac_rt60_trained). Other
//    declares (name, options, tail_seconds, ...) stay in the skeleton. Placeholder "$".
// A lifted constant of a definition the program's `process` never reaches (e.g. the other-rate
// lowerings `adac_process_<rate>` of a built .dsp) has no control in the compiled DSP: FAUST drops
// the widgets of unused code. It still belongs to the skeleton and to the values; nothing plays it.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace adac {

// A slider or number entry of the code (hslider, vslider, nentry), in order of appearance.
struct Widget {
    std::string label;              // its label as written, metadata `[...]` and surrounding blanks removed
    std::optional<double> init;     // its default, when that argument is one number literal
};

struct LiftedCode {
    std::string skeleton;        // code without comments, placeholders for the lifted and ignored numbers
    std::string code;            // compilable code with the hidden controls (== the input if none)
    std::vector<double> values;  // the lifted constants (floats and delay lengths), in order of appearance
    std::vector<std::pair<size_t, double>> capacities;  // (index in values, capacity) of each lifted delay length
    std::vector<Widget> widgets;
    bool lifted() const { return !values.empty(); }
};

// Label (and FAUST address component) of the hidden control of lifted constant i.
constexpr const char* kLiftPrefix = "adac_hot_k";
constexpr const char* kLiftGroup = "adac_hot";
constexpr long kMinLiftedDelay = 16;
constexpr long kMaxLiftedDelay = 1L << 20;  // longer: a constant (a capacity of 2^21 samples is 8 MB of floats)

LiftedCode liftConstants(const std::string& code);

}  // namespace adac
