// The runtime's table of IR kinds (internal): per kind, how the loader reads a node (structure into the PlanNode,
// numbers into the values, realised), its latency for given values, and its processor in float and double.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "adac/runtime/model.h"

namespace adac::runtime::detail {

using json = nlohmann::json;

// A block of signals: channel c's samples at p + c * stride.
template <class R> struct Sig {
    R* p = nullptr;
    size_t stride = 0;
    R* ch(int c) const { return p + size_t(c) * stride; }
    Sig at(int offset) const { return {p + offset, stride}; }
};

// What a node reads while it runs: the values and the rt60 control's loop factor.
template <class R> struct Run {
    const R* v = nullptr;
    const Values* values = nullptr;
    bool rt60 = false;
    R gamma = 1, gammaDefault = 1, smoothPole = 0;  // the per-sample smoother of each delay's decay (si.smoo)
};

constexpr int kNoLatency = 1 << 30;  // a node whose output never depends on its input (all paths cut)

// One node of a playing instance. Outputs live in the node's own buffer (out x maxBlock).
// process: n outputs from n inputs. pull/push (only when the node's latency >= n): pull gives the next n outputs
// before the n inputs are known (they cannot reach them), push then takes those inputs.
template <class R> class Node {
public:
    explicit Node(const PlanNode& p) : plan(p) {}
    virtual ~Node() = default;
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;

    const PlanNode& plan;
    virtual void prepare(int maxBlock, std::vector<Node*>& decaying)
    {
        stride = size_t(maxBlock);
        buffer.assign(size_t(plan.out) * stride, R(0));
        if (plan.inLoop && decays()) decaying.push_back(this);
    }
    virtual void reset() {}
    virtual bool decays() const { return false; }  // has delays the rt60 control scales
    virtual void control(const Run<R>&) {}         // once per block: the decays' targets
    virtual Sig<R> process(Sig<R> in, int n, const Run<R>& run) = 0;
    virtual Sig<R> pull(int, const Run<R>&) { return own(); }
    virtual void push(Sig<R>, int, const Run<R>&) {}
    int latency(const Run<R>& run) const { return run.values->latency[size_t(plan.index)]; }

protected:
    Sig<R> own() { return {buffer.data(), stride}; }
    std::vector<R> buffer;
    size_t stride = 0;
};

class Reader;

struct KindRow {
    const char* name;
    // reads the kind's own fields of `j` into `node` (structure) and reader.values (numbers), children through
    // reader.child; refuses what it cannot realise with reader.fail
    void (*read)(Reader& reader, const json& j, PlanNode& node);
    // the node's latency for values `v` (children's latencies already in `latency`)
    int (*latency)(const PlanNode& node, const double* v, const std::vector<int>& latency);
    std::unique_ptr<Node<float>> (*makeFloat)(const PlanNode&);
    std::unique_ptr<Node<double>> (*makeDouble)(const PlanNode&);
};

const std::vector<KindRow>& kindTable();
const KindRow& kindRow(const std::string& kind);  // throws Error for an unknown kind
template <class R> std::unique_ptr<Node<R>> makeNode(const PlanNode& node);

// The loader's state while it reads one document (load.cpp).
class Reader {
public:
    Reader(const LoadOptions& options, int fractionalOrder) : options(options), order(fractionalOrder) {}
    const LoadOptions& options;
    const int order;
    std::vector<double> values;
    std::string signature;
    size_t nodes = 0, memory = 0;
    int loopDepth = 0, depth = 0;

    PlanNode child(const json& j);  // any node (common fields, then its kind's row)
    [[noreturn]] void fail(const PlanNode& node, const std::string& what) const;
    bool flag(const json& j, const PlanNode& node, const char* field) const;
    const json& field(const json& j, const PlanNode& node, const char* name) const;
    double number(const json& j, const PlanNode& node, const char* what) const;  // finite
    std::vector<double> vector(const json& j, const PlanNode& node, const char* what, size_t n) const;
    // [rows][cols]
    std::vector<double> matrix(const json& j, const PlanNode& node, const char* what, size_t rows, size_t cols) const;
    void history(PlanNode& node, double samples);  // node.capacity for this many samples of history per input
    void push(double v) { values.push_back(v); }
};

size_t nextPowerOfTwo(size_t n);

}  // namespace adac::runtime::detail
