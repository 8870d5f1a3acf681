// The loader: an IR document (JSON text) to a Plan and its Values. Every field is checked before use; every
// refusal names the node's path (or the document's field). No number reaches the Values unless finite.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <fstream>
#include <sstream>

#include "kinds.h"

namespace adac::runtime {

namespace detail {

size_t nextPowerOfTwo(size_t n)
{
    size_t p = 1;
    while (p < n) p <<= 1;
    return p;
}

namespace {

std::string pathOf(const PlanNode& node) { return node.path.empty() ? std::string("<root>") : node.path; }

// a name from the document, printable in a message: at most `max` bytes, control characters and non-ASCII bytes '?'
std::string printable(const std::string& name, size_t max)
{
    std::string out = name.substr(0, max);
    for (char& c : out)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
    return out;
}

// the latency of every node, children first (pre-order indices: a child's index is above its parent's)
int computeLatency(const PlanNode& node, const double* v, std::vector<int>& latency)
{
    for (const PlanNode& c : node.children) computeLatency(c, v, latency);
    const int l = kindRow(node.kind).latency(node, v, latency);
    latency[size_t(node.index)] = l;
    return l;
}

}  // namespace

// every loop needs a latency of at least one sample in its feedforward or its feedback path (for these values)
void checkLoops(const PlanNode& node, const std::vector<int>& latency)
{
    for (const PlanNode& c : node.children) checkLoops(c, latency);
    if (node.kind == "recursion" && latency[size_t(node.children[0].index)] < 1 && latency[size_t(node.children[1].index)] < 1)
        throw Error(pathOf(node) + ": recursion: delay-free loop: neither the feedback nor the feedforward path has a delay "
                                   "of at least one sample on every channel, so the loop cannot run");
}

// every number of the Values is played in float too (Values::real32): one beyond its range would be infinite
void checkFloatRange(const PlanNode& node, const std::vector<double>& values)
{
    for (const PlanNode& c : node.children) checkFloatRange(c, values);
    if (!node.children.empty()) return;  // a container's range is its children's values, checked just above
    for (size_t i = node.offset; i < node.offset + node.count; ++i)
        if (std::abs(values[i]) > double(std::numeric_limits<float>::max())) {
            char number[32];
            std::snprintf(number, sizeof number, "%g", values[i]);
            throw Error(pathOf(node) + ": " + node.kind + ": the number " + number +
                        " (as realised) is beyond the float range the runtime plays in");
        }
}

// Every node's output is a buffer of a block per channel (Node::prepare): their number is bounded as the delays'
// memory is (10000 nodes of 1024 channels would be 20 GB in blocks of 512 floats).
constexpr size_t kMaxSignals = size_t(1) << 16;

void checkSignals(const PlanNode& node, size_t& signals, const Reader& reader)
{
    signals += size_t(node.out) + (node.kind == "recursion" ? size_t(node.in) : 0);  // a loop's sum too
    if (signals > kMaxSignals)
        reader.fail(node, "the model's nodes give more than " + std::to_string(kMaxSignals) +
                              " signals (each a buffer of a block), the runtime's bound");
    for (const PlanNode& c : node.children) checkSignals(c, signals, reader);
}

void Reader::fail(const PlanNode& node, const std::string& what) const
{
    throw Error(pathOf(node) + ": " + node.kind + ": " + what);
}

const json& Reader::field(const json& j, const PlanNode& node, const char* name) const
{
    auto it = j.find(name);
    if (it == j.end()) fail(node, std::string("missing field '") + name + "'");
    return *it;
}

bool Reader::flag(const json& j, const PlanNode& node, const char* name) const
{
    const json& f = field(j, node, name);
    if (!f.is_boolean()) fail(node, std::string("'") + name + "' must be true or false");
    return f.get<bool>();
}

double Reader::number(const json& j, const PlanNode& node, const char* what) const
{
    if (!j.is_number()) fail(node, std::string(what) + ": expected a number");
    const double v = j.get<double>();
    if (!std::isfinite(v)) fail(node, std::string(what) + ": not a finite number");
    return v;
}

std::vector<double> Reader::vector(const json& j, const PlanNode& node, const char* what, size_t n) const
{
    if (!j.is_array() || j.size() != n)
        fail(node, std::string(what) + ": expected a list of " + std::to_string(n) + " numbers");
    std::vector<double> out;
    out.reserve(n);
    for (const json& x : j) out.push_back(number(x, node, what));
    return out;
}

std::vector<double> Reader::matrix(const json& j, const PlanNode& node, const char* what, size_t rows, size_t cols) const
{
    if (!j.is_array() || j.size() != rows)
        fail(node, std::string(what) + ": expected " + std::to_string(rows) + " rows of " + std::to_string(cols));
    std::vector<double> out;
    out.reserve(rows * cols);
    for (const json& row : j) {
        std::vector<double> r = vector(row, node, what, cols);
        out.insert(out.end(), r.begin(), r.end());
    }
    return out;
}

void Reader::history(PlanNode& node, double samples)
{
    if (samples > options.limits.maxDelaySamples + 64 + order)
        fail(node, "a delay of " + std::to_string(samples) + " samples is above the limit of " +
                       std::to_string(options.limits.maxDelaySamples));
    node.capacity = nextPowerOfTwo(size_t(samples) + 1);
    memory += node.capacity * size_t(node.in);
    if (memory > options.limits.maxDelayMemory)
        fail(node, "the model's delays need more than " + std::to_string(options.limits.maxDelayMemory) + " samples of memory");
}

PlanNode Reader::child(const json& j)
{
    struct Level {
        int& d;
        explicit Level(int& depth) : d(++depth) {}
        ~Level() { --d; }
    } level(depth);
    PlanNode node;
    node.kind = "node";
    if (!j.is_object()) fail(node, "expected an object");
    if (j.contains("path") && j["path"].is_string()) node.path = printable(j["path"].get<std::string>(), 200);
    if (depth > options.limits.maxDepth) fail(node, "the graph is nested deeper than " + std::to_string(options.limits.maxDepth));
    if (++nodes > options.limits.maxNodes) fail(node, "more than " + std::to_string(options.limits.maxNodes) + " nodes");
    const json& kind = field(j, node, "kind");
    if (!kind.is_string()) fail(node, "'kind' must be a string");
    node.kind = printable(kind.get<std::string>(), 40);  // in messages (an unknown kind is refused below)
    auto known = std::find_if(kindTable().begin(), kindTable().end(), [&](const KindRow& r) { return node.kind == r.name; });
    if (known == kindTable().end()) fail(node, "the runtime realises no IR node kind of this name");
    const KindRow& row = *known;
    for (const char* name : {"in", "out"}) {
        const json& f = field(j, node, name);
        if (!f.is_number_integer() || f.get<long long>() < 1 || f.get<long long>() > options.limits.maxChannels)
            fail(node, std::string("'") + name + "' must be an integer in 1.." + std::to_string(options.limits.maxChannels));
    }
    node.in = j["in"].get<int>();
    node.out = j["out"].get<int>();
    node.index = int(nodes - 1);
    node.inLoop = loopDepth > 0;
    node.offset = values.size();
    row.read(*this, j, node);
    node.count = values.size() - node.offset;
    if (values.size() > options.limits.maxValues) fail(node, "the model has more than " + std::to_string(options.limits.maxValues) + " numbers");
    std::ostringstream sig;
    sig << node.kind << '(' << node.in << ',' << node.out << ',' << node.diagonal << node.sumOutput << node.inLoop << ','
        << node.capacity << ':';
    for (int s : node.shape) sig << s << ' ';
    sig << ')';
    signature += sig.str();
    return node;
}

}  // namespace detail

using detail::json;

namespace {

// a control's number: finite, and within the float range (Processor<float> computes with it)
double controlNumber(const json& j, const PlanNode& where, const char* what, const detail::Reader& reader)
{
    const double v = reader.number(j, where, what);
    if (std::abs(v) > double(std::numeric_limits<float>::max()))
        reader.fail(where, std::string(what) + ": beyond the float range the runtime plays in");
    return v;
}

void readControl(const json& spec, const char* name, ControlSpec& out, const detail::Reader& reader)
{
    PlanNode where;
    where.kind = std::string("control ") + name;
    where.path = "realisation.controls";
    if (!spec.is_object()) reader.fail(where, "expected an object");
    out.enabled = true;
    out.defaultValue = controlNumber(reader.field(spec, where, "default"), where, "default", reader);
    out.min = controlNumber(reader.field(spec, where, "min"), where, "min", reader);
    out.max = controlNumber(reader.field(spec, where, "max"), where, "max", reader);
    if (!(out.min < out.max) || out.defaultValue < out.min || out.defaultValue > out.max)
        reader.fail(where, "needs min < max and min <= default <= max");
}

Controls readControls(const json& doc, detail::Reader& reader, int inputs, int outputs)
{
    Controls c;
    auto realisation = doc.find("realisation");
    if (realisation == doc.end()) return c;
    auto controls = realisation->find("controls");
    if (controls == realisation->end() || controls->is_null()) return c;
    PlanNode where;
    where.kind = "controls";
    where.path = "realisation";
    if (!controls->is_object()) reader.fail(where, "expected an object");
    for (auto& [name, spec] : controls->items()) {
        if (name == "rt60") {
            readControl(spec, "rt60", c.rt60, reader);
            if (c.rt60.min <= 0) reader.fail(where, "rt60.min: a reverberation time must be positive");
            const json& trained = reader.field(spec, where, "trained");
            c.rt60Trained = trained.is_null() ? 0.0 : controlNumber(trained, where, "rt60.trained", reader);
            if (c.rt60Trained < 0) reader.fail(where, "rt60.trained must be positive (or null: lossless)");
            c.rt60GammaMax = controlNumber(reader.field(spec, where, "gamma_max"), where, "rt60.gamma_max", reader);
            if (!(c.rt60GammaMax > 0)) reader.fail(where, "rt60.gamma_max must be positive");
        } else if (name == "dry_wet") {
            readControl(spec, "dry_wet", c.dryWet, reader);
            if (c.dryWet.min < 0 || c.dryWet.max > 1) reader.fail(where, "dry_wet: the mix lies in [0, 1]");
            if (inputs != outputs && inputs != 1)
                reader.fail(where, "dry_wet: a model with " + std::to_string(inputs) + " inputs and " +
                                       std::to_string(outputs) + " outputs has no dry signal to mix");
            auto law = spec.find("law");
            c.dryWetLinear = law != spec.end() && law->is_string() && law->get<std::string>() == "linear";
        } else if (name == "pre_delay") {
            readControl(spec, "pre_delay", c.preDelay, reader);
            if (c.preDelay.min < 0) reader.fail(where, "pre_delay.min: a delay cannot be negative");
            if (c.preDelay.max / 1000 * kMaxSampleRate > reader.options.limits.maxDelaySamples)
                reader.fail(where, "pre_delay.max is above the longest delay");
            // its lines (one per input, sized for the maximum at the highest rate) count with the model's delays
            reader.memory += detail::nextPowerOfTwo(size_t(c.preDelay.max / 1000 * kMaxSampleRate) + 4) * size_t(inputs);
            if (reader.memory > reader.options.limits.maxDelayMemory)
                reader.fail(where, "pre_delay: its lines on " + std::to_string(inputs) + " inputs and the model's delays need more than " +
                                       std::to_string(reader.options.limits.maxDelayMemory) + " samples of memory");
        } else {
            reader.fail(where, "unknown control '" + detail::printable(name, 40) + "'");
        }
    }
    return c;
}

int intField(const json& doc, const char* name, int lo, int hi)
{
    auto it = doc.find(name);
    if (it == doc.end() || !it->is_number_integer() || it->get<long long>() < lo || it->get<long long>() > hi)
        throw Error(std::string("IR: '") + name + "' must be an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
    return it->get<int>();
}

}  // namespace

Model load(std::string_view text, const LoadOptions& options)
{
    if (text.size() > options.limits.maxBytes) throw Error("IR: the document is larger than " + std::to_string(options.limits.maxBytes) + " bytes");
    const int maxDepth = options.limits.maxDepth;
    bool tooDeep = false;
    json doc;
    try {
        doc = json::parse(text.begin(), text.end(), [&](int depth, json::parse_event_t, json&) {
            if (depth > maxDepth) tooDeep = true;
            return !tooDeep;
        });
    } catch (const json::exception& e) {
        throw Error("IR: not a JSON document: " + detail::printable(e.what(), 300));  // it quotes the text
    }
    if (tooDeep) throw Error("IR: the document is nested deeper than " + std::to_string(maxDepth));
    if (!doc.is_object()) throw Error("IR: expected a JSON object");
    auto format = doc.find("format");
    if (format == doc.end() || *format != "adac-ir") throw Error("IR: 'format' must be \"adac-ir\"");
    auto version = doc.find("version");
    if (version == doc.end() || !version->is_string() || version->get<std::string>().rfind("1.", 0) != 0)
        throw Error("IR: 'version' must be 1.x");

    auto plan = std::make_shared<Plan>();
    auto values = std::make_shared<Values>();
    auto name = doc.find("name");
    if (name == doc.end() || !name->is_string()) throw Error("IR: 'name' must be a string");
    plan->name = name->get<std::string>().substr(0, 200);
    plan->fs = intField(doc, "fs", 1, 10000000);
    plan->inputs = intField(doc, "input_channels", 1, options.limits.maxChannels);
    plan->outputs = intField(doc, "output_channels", 1, options.limits.maxChannels);

    int order = options.fractionalOrder;
    auto realisation = doc.find("realisation");
    if (realisation != doc.end()) {
        if (!realisation->is_object()) throw Error("IR: 'realisation' must be an object");
        auto fo = realisation->find("fractional_order");
        if (fo != realisation->end()) {
            if (!fo->is_number_integer() || fo->get<long long>() < 1 || fo->get<long long>() > options.limits.maxFractionalOrder)
                throw Error("IR: realisation.fractional_order must be an integer in 1.." + std::to_string(options.limits.maxFractionalOrder));
            order = fo->get<int>();
        }
    }
    if (order < 1 || order > options.limits.maxFractionalOrder) throw Error("IR: the fractional order is out of range");

    detail::Reader reader(options, order);
    auto graph = doc.find("graph");
    if (graph == doc.end()) throw Error("IR: missing 'graph'");
    plan->root = reader.child(*graph);
    if (plan->root.in != plan->inputs || plan->root.out != plan->outputs)
        reader.fail(plan->root, "the graph has " + std::to_string(plan->root.in) + " inputs and " + std::to_string(plan->root.out) +
                                    " outputs, the document declares " + std::to_string(plan->inputs) + " and " +
                                    std::to_string(plan->outputs));
    size_t signals = 0;
    detail::checkSignals(plan->root, signals, reader);
    values->controls = readControls(doc, reader, plan->inputs, plan->outputs);
    const Controls& c = values->controls;
    plan->controls[0] = c.rt60.enabled;
    plan->controls[1] = c.dryWet.enabled;
    plan->controls[2] = c.preDelay.enabled;
    if (c.rt60.enabled) {
        bool loops = false;
        std::vector<const PlanNode*> stack{&plan->root};
        while (!stack.empty()) {
            const PlanNode* n = stack.back();
            stack.pop_back();
            loops = loops || n->kind == "recursion";
            for (const PlanNode& ch : n->children) stack.push_back(&ch);
        }
        if (!loops) throw Error("realisation.controls: rt60: the model has no feedback loop to scale");
    }
    plan->nodeCount = reader.nodes;
    plan->valueCount = reader.values.size();
    std::ostringstream sig;
    sig << plan->inputs << 'x' << plan->outputs << " order " << order << " controls " << c.rt60.enabled << c.dryWet.enabled
        << c.preDelay.enabled << c.dryWetLinear << (c.rt60Trained == 0) << ' ' << reader.signature;
    plan->signature = sig.str();

    detail::checkFloatRange(plan->root, reader.values);
    values->real64 = std::move(reader.values);
    values->real32.assign(values->real64.begin(), values->real64.end());
    values->latency.assign(plan->nodeCount, 0);
    detail::computeLatency(plan->root, values->real64.data(), values->latency);
    detail::checkLoops(plan->root, values->latency);
    return {plan, values};
}

Model loadFile(const std::string& path, const LoadOptions& options)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open the file");
    std::string text;
    in.seekg(0, std::ios::end);
    const std::streamoff size = in.tellg();
    if (size < 0 || size_t(size) > options.limits.maxBytes) throw Error(path + ": not a readable document of at most " +
                                                                        std::to_string(options.limits.maxBytes) + " bytes");
    text.resize(size_t(size));
    in.seekg(0);
    in.read(text.data(), size);
    try {
        return load(text, options);
    } catch (const Error& e) {
        throw Error(path + ": " + e.what());
    }
}

std::vector<std::string> kinds()
{
    std::vector<std::string> out;
    for (const detail::KindRow& row : detail::kindTable()) out.push_back(row.name);
    return out;
}

}  // namespace adac::runtime
