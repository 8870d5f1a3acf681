// adac runtime: an IR document as data. `load` reads the JSON (nlohmann-json) and gives
//  - a Plan: the structure (kinds, channel counts, which delays are fractional, buffer capacities, which
//    macro-controls exist), immutable and shared by every instance that plays it;
//  - Values: every number the structure needs, already realised (Lagrange taps, SVF constants, the controls'
//    ranges), as one flat array in float64 and float32, plus what derives from them (each node's latency).
// Two documents with the same Plan::signature differ only in values: a player swaps the Values (a pointer) and
// keeps its state. Anything the runtime does not realise is refused with an Error naming the node's path.
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace adac::runtime {

// A refused document. The message names the node (its IR path) or the field.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Bounds on what a document may ask for (the loader is an attack surface: a file on disk, a watched path).
struct Limits {
    size_t maxBytes = size_t(1) << 28;          // the document's text
    int maxDepth = 100;                          // nesting of lists and objects (adac.ir.document.MAX_DEPTH)
    size_t maxNodes = 10000;                     // graph nodes
    int maxChannels = 1024;                      // a node's inputs or outputs
    double maxDelaySamples = double(1 << 22);    // one delay (adac.ir.document.MAX_DELAY_SAMPLES)
    size_t maxDelayMemory = size_t(1) << 25;     // samples of every delay buffer together (MAX_DELAY_MEMORY)
    size_t maxValues = size_t(1) << 24;          // numbers in the Values
    int maxFractionalOrder = 255;
};

struct LoadOptions {
    int fractionalOrder = 15;  // Lagrange order of fractional delays unless the document's realisation sets it
    Limits limits;
};

// One node of the structure (pre-order index `index`). Values of the node: values[offset, offset + count).
struct PlanNode {
    int index = 0;
    std::string kind, path;
    int in = 0, out = 0;
    bool diagonal = false;
    bool sumOutput = false;  // parallel
    bool inLoop = false;     // inside a recursion: its delays decay with the rt60 control
    std::vector<PlanNode> children;  // series, parallel; recursion: {feedforward, feedback}
    std::vector<int> shape;  // per kind: delay paths' tap counts (1: integer), fir {taps}, sos {sections}
    size_t capacity = 0;     // history samples per input channel (power of two; 0: none)
    size_t offset = 0, count = 0;
};

// The macro-controls (adac.analysis.controls): which exist is structure, their numbers are values.
struct ControlSpec {
    bool enabled = false;
    double defaultValue = 0, min = 0, max = 0;
};
struct Controls {
    ControlSpec rt60, dryWet, preDelay;
    double rt60Trained = 0;     // the trained T60 in s at the IR's rate; 0: a lossless model (no trained decay)
    double rt60GammaMax = 1;    // the loop factor's clamp (what the certificate covers)
    bool dryWetLinear = false;  // law: linear (1-m, m), else equal power (sqrt(1-m), sqrt(m))
};

// The control names (their FAUST addresses are /adac/<name>), in this order everywhere.
constexpr const char* kControlNames[3] = {"rt60", "dry_wet", "pre_delay"};
constexpr const char* kControlUnits[3] = {"s", "", "ms"};
constexpr double kControlSteps[3] = {0.001, 0.001, 0.1};
constexpr double kMaxSampleRate = 192000;        // the pre-delay's buffer is sized for its max at this rate
constexpr double kPreDelaySmoothingSeconds = 0.05;

struct Plan {
    std::string name;
    int fs = 0, inputs = 0, outputs = 0;
    PlanNode root;
    size_t nodeCount = 0, valueCount = 0;
    bool controls[3] = {false, false, false};  // rt60, dry_wet, pre_delay present
    std::string signature;  // equal signatures: the same structure (instances can swap Values)
};

struct Values {
    std::vector<double> real64;
    std::vector<float> real32;  // the same numbers, rounded once off the audio thread
    std::vector<int> latency;   // per node index: samples its output can be read ahead of its input (0: none)
    Controls controls;
    template <class R> const R* data() const;
};
template <> inline const double* Values::data<double>() const { return real64.data(); }
template <> inline const float* Values::data<float>() const { return real32.data(); }

struct Model {
    std::shared_ptr<const Plan> plan;
    std::shared_ptr<const Values> values;
};

// Parses and checks an IR document ("format": "adac-ir", version 1.x) and its optional "realisation"
// ({"fractional_order": P, "controls": {...}} as adac.backends.runtime writes it). Throws Error.
Model load(std::string_view json, const LoadOptions& options = {});
Model loadFile(const std::string& path, const LoadOptions& options = {});

// The IR node kinds the runtime realises, by name (the schema's node.oneOf; tests compare the two).
std::vector<std::string> kinds();

}  // namespace adac::runtime
