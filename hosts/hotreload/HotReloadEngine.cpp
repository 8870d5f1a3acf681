#include "HotReloadEngine.h"

#include <sys/stat.h>
#ifdef __linux__
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>
#endif

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>

#include "ConstantLifter.h"
#include "adac/runtime/faust_dsp.h"
#include "adac/runtime/model.h"
#include "faust/dsp/dsp.h"
#include "faust/dsp/interpreter-dsp.h"
#include "faust/dsp/llvm-dsp.h"
#include "faust/gui/MapUI.h"
#include "faust/gui/meta.h"

namespace adac {

namespace {

// libfaust's compiler and its factory tables are not re-entrant: every call that creates or deletes
// a factory or an instance holds this (any engine, any thread; never the audio thread). Recursive:
// the watcher frees its graveyard holding it, and each destructor takes it again.
std::recursive_mutex compilerMutex;

long long nowMicros()
{
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string jsonString(const std::string& text)
{
    std::string out = "\"";
    for (unsigned char c : text) {
        if (c == '"' || c == '\\') { out += '\\'; out += (char) c; }
        else if (c == '\n') out += "\\n";
        else if (c < 0x20) { char b[8]; std::snprintf(b, sizeof b, "\\u%04x", c); out += b; }
        else out += (char) c;
    }
    return out + "\"";
}

// `declare tail_seconds "T";` of a DSP (the plugin's tail), 10 s when absent or not a number >= 0
struct TailMeta : public Meta {
    double seconds = 10.0;
    void declare(const char* key, const char* value) override
    {
        if (key && value && std::strcmp(key, "tail_seconds") == 0) {
            const double t = std::atof(value);
            if (std::isfinite(t) && t >= 0.0) seconds = t;
        }
    }
};

constexpr const char* kTagMark = "// adac-publish";

// The defaults of a code's widgets, by index.
std::vector<std::optional<double>> defaultsOf(const LiftedCode& lifted)
{
    std::vector<std::optional<double>> out;
    for (auto& widget : lifted.widgets) out.push_back(widget.init);
    return out;
}

// The address of each widget label among a DSP's parameters: the one address whose last component is the
// label as FAUST writes it there (PathBuilder::buildPath replaces these characters by '_'); "" when there
// is none or more than one (a label of a `par` copy, `%i`, or the same label in two groups).
std::vector<std::string> widgetAddresses(const std::vector<std::string>& labels, const std::map<std::string, FAUSTFLOAT*>& params)
{
    std::vector<std::string> out;
    for (const std::string& label : labels) {
        std::string key = label;
        for (char& ch : key)
            if (std::strchr(" #*,?[]{}()", ch)) ch = '_';
        std::string found;
        int matches = 0;
        if (!key.empty() && key.find_first_of("/%") == std::string::npos) {
            for (auto& [address, zone] : params) {
                if (address.size() > key.size() && address.compare(address.size() - key.size(), key.size(), key) == 0 &&
                    address[address.size() - key.size() - 1] == '/') {
                    found = address;
                    matches++;
                }
            }
        }
        out.push_back(matches == 1 ? found : std::string());
    }
    return out;
}

}  // namespace

struct HotReloadEngine::Factory {
    dsp_factory* factory = nullptr;
    bool llvm = false;
    ~Factory()
    {
        std::lock_guard<std::recursive_mutex> lock(compilerMutex);
        if (llvm) deleteDSPFactory(static_cast<llvm_dsp_factory*>(factory));
        else deleteInterpreterDSPFactory(static_cast<interpreter_dsp_factory*>(factory));
    }
    static std::shared_ptr<Factory> compile(const std::string& code, bool llvm, int optLevel, std::string& error)
    {
        const char* argv[] = {"-I", "/usr/share/faust"};
        std::lock_guard<std::recursive_mutex> lock(compilerMutex);
        dsp_factory* made = llvm ? static_cast<dsp_factory*>(createDSPFactoryFromString("adac", code, 2, argv, "", error, optLevel))
                                 : static_cast<dsp_factory*>(createInterpreterDSPFactoryFromString("adac", code, 2, argv, error));
        if (!made) {
            if (error.empty()) error = "compilation failed";
            return nullptr;
        }
        auto out = std::make_shared<Factory>();
        out->factory = made;
        out->llvm = llvm;
        return out;
    }
    dsp* create()
    {
        std::lock_guard<std::recursive_mutex> lock(compilerMutex);
        if (llvm) return static_cast<llvm_dsp_factory*>(factory)->createDSPInstance();
        return static_cast<interpreter_dsp_factory*>(factory)->createDSPInstance();
    }
};

// One compiled program text: the lifted code (when it compiled) or the plain code. Every history
// entry of the same skeleton shares it; it owns its factories (interpreter and/or LLVM).
struct HotReloadEngine::Structure {
    std::string skeleton;  // of the lifted code; "" when plain
    std::string code;      // the text compiled
    bool lifted = false;
    size_t constants = 0;
    std::vector<std::pair<size_t, double>> capacities;  // of its lifted delay lengths (LiftedCode::capacities)
    std::vector<std::string> widgetLabels;   // its sliders and number entries (LiftedCode::widgets), in order
    std::vector<std::string> widgetAddress;  // their addresses; "" when not one parameter (resolved at the first instance)
    bool widgetsResolved = false;
    std::shared_ptr<Factory> interpreter, llvm;
    bool llvmQueued = false, llvmFailed = false;  // Tiered: watcher thread only
};

struct HotReloadEngine::Entry {
    HistoryEntry info;
    std::shared_ptr<Structure> structure;  // a FAUST program's (null: an IR document's)
    std::vector<double> values;  // the lifted constants of this publish
    Defaults defaults;           // its widgets' defaults
    runtime::Model model;        // an IR document's plan and values (null: a FAUST program)
};

// New values for a playing instance, immutable once handed over: the runtime's Values (an IR document) or a
// FAUST program's lifted constants, and new defaults for the zones of parameters never set. The watcher makes
// it and puts it in the instance's mailbox; the audio thread takes it at the start of a block (an exchange),
// applies it to the instance it is about to compute and acknowledges its sequence number; the watcher frees a
// snapshot only once the audio thread has acknowledged a later one (or when it replaces one never taken).
struct HotReloadEngine::Snapshot {
    long sequence = 0;
    std::shared_ptr<const runtime::Values> values;          // an IR document's
    std::vector<double> constants;                         // a FAUST program's lifted constants, by index
    std::vector<std::pair<FAUSTFLOAT*, FAUSTFLOAT>> defaults;  // zone <- new default (parameters never set)
};

struct HotReloadEngine::Job {
    std::weak_ptr<Structure> structure;
    std::string code;
    std::shared_ptr<Factory> result;
    std::string error;
};

// A playable DSP: an instance of a structure's factory with its constants and parameter bindings,
// or (no dsp) the bypass. Built and freed by the watcher only; computed by the audio thread.
struct HotReloadEngine::Instance {
    std::shared_ptr<Structure> structure;  // a FAUST program's (null: the bypass or an IR document)
    std::shared_ptr<Factory> factory;
    std::unique_ptr<dsp> faust;  // null: the bypass (dry input to the outputs)
    runtime::FaustDsp<float>* player = nullptr;  // faust, when it plays an IR document
    runtime::Model model;                 // the IR document's plan and the newest values handed to it
    bool llvm = false;
    // values snapshots: the newest not yet taken (watcher -> audio), the sequence of the one the audio thread
    // applied last (audio -> watcher), and every snapshot handed and not yet freed (watcher only), oldest first
    std::atomic<Snapshot*> mailbox{nullptr};
    std::atomic<long> taken{0};
    std::deque<std::unique_ptr<Snapshot>> snapshots;
    long nextSequence = 1;
    int inputs = 0, outputs = 0;
    double tail = 10.0;
    std::vector<FAUSTFLOAT*> constants;  // zones of the lifted constants, by index (null: unused by the program)
    std::vector<double> values;          // what they hold
    std::vector<FAUSTFLOAT*> widgetZones;  // zones of the structure's widgets, by index (null: address unknown)
    Defaults defaults;                   // their defaults (a parameter never set plays its default)
    std::vector<std::pair<int, FAUSTFLOAT*>> bindings;  // parameter slot -> zone
    std::map<std::string, FAUSTFLOAT*> params;          // address as the plain program has it -> zone
    ~Instance()
    {
        if (!factory) return;  // the runtime's or the bypass: libfaust is not involved
        std::lock_guard<std::recursive_mutex> lock(compilerMutex);
        faust.reset();  // before the factory: libfaust tracks a factory's instances
    }
    void writeConstants()
    {
        for (size_t i = 0; i < constants.size() && i < values.size(); ++i)
            if (constants[i]) *constants[i] = (FAUSTFLOAT) values[i];  // null: a constant the program does not use
    }
    // the defaults, into every widget zone (init() wrote the compiled ones); applySlots then writes what is set
    void writeDefaults()
    {
        for (size_t w = 0; w < widgetZones.size() && w < defaults.size(); ++w)
            if (widgetZones[w] && defaults[w]) *widgetZones[w] = (FAUSTFLOAT) *defaults[w];
    }

    // Sort the zones into parameters and lifted constants. A lifted constant has no control when the
    // compiled program does not depend on it: FAUST drops the widgets of definitions `process` never
    // reaches (e.g. the .dsp's other-rate lowerings `adac_process_<rate>`, docs/sample_rate.md), so
    // its zone stays null and its value is not written anywhere. False (an internal error) only when
    // a control of the hidden group is not one of this program's constants.
    // The hidden group of the constants can add a top-level group to the UI: when the program's own
    // widgets all live in one group G, its addresses are /G/... but the lifted program's are
    // /<name>/G/...; strip that extra level.
    bool indexZones(MapUI& ui, bool lifted, size_t nConstants)
    {
        constants.assign(nConstants, nullptr);
        std::vector<std::pair<std::vector<std::string>, FAUSTFLOAT*>> user;
        const size_t prefix = std::strlen(kLiftPrefix);
        for (auto& [address, zone] : ui.getFullpathMap()) {
            std::vector<std::string> parts;
            std::stringstream split(address);
            for (std::string part; std::getline(split, part, '/');)
                if (!part.empty()) parts.push_back(part);
            if (lifted && parts.size() >= 2 && parts[parts.size() - 2] == kLiftGroup) {
                const std::string& label = parts.back();
                const bool digits = label.size() > prefix && label.compare(0, prefix, kLiftPrefix) == 0 &&
                                    label.find_first_not_of("0123456789", prefix) == std::string::npos;
                const size_t index = digits ? std::strtoul(label.c_str() + prefix, nullptr, 10) : nConstants;
                if (index >= nConstants || constants[index]) return false;
                constants[index] = zone;
                continue;
            }
            user.emplace_back(parts, zone);
        }
        bool strip = lifted && !user.empty();
        for (auto& [parts, zone] : user)
            strip = strip && parts.size() >= 3 && parts[1] == user.front().first[1];
        for (auto& [parts, zone] : user) {
            std::string address;
            for (size_t k = strip ? 1 : 0; k < parts.size(); ++k) address += "/" + parts[k];
            params[address] = zone;
        }
        return true;
    }
};

// The publisher's tag line `// adac-publish [step=<int>] [loss=<float|nan>]`, if it is the first line:
// read into `info`, and the text without it returned.
static std::string stripTag(const std::string& text, HistoryEntry& info)
{
    const size_t mark = std::strlen(kTagMark);
    if (text.compare(0, mark, kTagMark) != 0 || (text.size() > mark && !std::isspace((unsigned char) text[mark]))) return text;
    const size_t eol = text.find('\n');
    std::istringstream words(text.substr(mark, eol == std::string::npos ? std::string::npos : eol - mark));
    for (std::string word; words >> word;) {
        const std::string value = word.substr(word.find('=') + 1);
        char* end = nullptr;
        if (word.compare(0, 5, "step=") == 0) {
            const long step = std::strtol(value.c_str(), &end, 10);
            if (!value.empty() && *end == '\0') { info.hasStep = true; info.step = step; }
        } else if (word.compare(0, 5, "loss=") == 0) {
            const double loss = std::strtod(value.c_str(), &end);
            if (!value.empty() && *end == '\0') { info.hasLoss = true; info.loss = loss; }
        }
    }
    return eol == std::string::npos ? std::string() : text.substr(eol + 1);
}

HotReloadEngine::HotReloadEngine(std::string p, int sr, int block, EngineOptions o)
    : path(std::move(p)), sampleRate(sr), maxBlock(std::max(1, block)), options(std::move(o)), bypass(std::make_unique<Instance>())
{
    state.backend = options.backend == Backend::LLVM ? "llvm" : options.backend == Backend::Tiered ? "tiered" : "interpreter";
    if (options.crossfadeSamples < 1) options.crossfadeSamples = 1;
    watcher = std::thread([this] { watch(); });
    if (options.backend == Backend::Tiered) compiler = std::thread([this] { compileLoop(); });
}

HotReloadEngine::~HotReloadEngine()
{
    {
        std::lock_guard<std::mutex> lock(jobMutex);
        stopping = true;
    }
    jobReady.notify_all();
    watcher.join();
    if (compiler.joinable()) compiler.join();
    for (Instance* inst : {current.exchange(nullptr), pending.exchange(nullptr), retired.exchange(nullptr), fading})
        if (inst != bypass.get()) delete inst;
    std::lock_guard<std::recursive_mutex> lock(compilerMutex);
    graveyard.clear();
    entries.clear();
    job.reset();
    done.clear();
}

// --- audio thread ----------------------------------------------------------------------------

void HotReloadEngine::applySlots(Instance* inst)
{
    for (auto& [slot, zone] : inst->bindings)
        if (slots[slot].set.load(std::memory_order_relaxed)) *zone = slots[slot].value.load(std::memory_order_relaxed);
}

bool HotReloadEngine::takeValues(Instance* inst)
{
    if (!inst->mailbox.load(std::memory_order_relaxed)) return false;
    Snapshot* next = inst->mailbox.exchange(nullptr, std::memory_order_acq_rel);
    if (!next) return false;
    if (inst->player) {
        inst->player->processor().setValues(next->values.get());
    } else {
        for (size_t i = 0; i < inst->constants.size() && i < next->constants.size(); ++i)
            if (inst->constants[i]) *inst->constants[i] = (FAUSTFLOAT) next->constants[i];
    }
    for (auto& [zone, value] : next->defaults) *zone = value;
    inst->taken.store(next->sequence, std::memory_order_release);  // the previous one is the watcher's to free
    return true;
}

void HotReloadEngine::computeInstance(Instance* inst, int n, float** in, float** out)
{
    takeValues(inst);
    applySlots(inst);
    if (inst->faust) {
        inst->faust->compute(n, in, out);
        return;
    }
    const int nin = channelsIn.load(std::memory_order_relaxed), nout = channelsOut.load(std::memory_order_relaxed);
    for (int c = 0; c < nout; ++c) {  // the bypass: input c (the last one for extra outputs) to output c
        if (nin > 0) std::copy(in[std::min(c, nin - 1)], in[std::min(c, nin - 1)] + n, out[c]);
        else std::fill(out[c], out[c] + n, 0.0f);
    }
}

void HotReloadEngine::process(int count, int nin, float** inputs, int nout, float** outputs)
{
    for (int done = 0; done < count; done += maxBlock) {
        const int n = std::min(maxBlock, count - done);
        Instance* now = current.load(std::memory_order_acquire);
        if (!now || nin != channelsIn.load(std::memory_order_relaxed) || nout != channelsOut.load(std::memory_order_relaxed)) {
            for (int c = 0; c < nout; ++c) std::fill(outputs[c] + done, outputs[c] + done + n, 0.0f);
            continue;
        }
        for (int c = 0; c < nin; ++c) inPtr[c] = inputs[c] + done;
        for (int c = 0; c < nout; ++c) outPtr[c] = outputs[c] + done;
        bool activated = false;
        // start a crossfade old -> new; only when the last faded-out instance has been collected,
        // so the audio thread never frees anything
        if (!fading && !retired.load(std::memory_order_acquire)) {
            if (Instance* next = pending.exchange(nullptr, std::memory_order_acq_rel)) {
                fading = now;
                current.store(next, std::memory_order_release);
                now = next;
                fadePos = 0;
                activated = true;
            }
        }
        if (takeValues(now)) activated = true;  // new values from this block on
        if (activated) {
            activationMicros = nowMicros();
            activations++;
        }
        if (!fading) {
            computeInstance(now, n, inPtr.data(), outPtr.data());
            continue;
        }
        computeInstance(fading, n, inPtr.data(), scratchOldPtr.data());
        computeInstance(now, n, inPtr.data(), outPtr.data());
        const int fade = options.crossfadeSamples;
        for (int i = 0; i < n; ++i) {
            const float a = fadePos < fade ? float(fadePos) / fade : 1.0f;
            for (int c = 0; c < nout; ++c) outPtr[c][i] = (1 - a) * scratchOldPtr[c][i] + a * outPtr[c][i];
            if (fadePos < fade) fadePos++;
        }
        if (fadePos >= fade) {
            retired.store(fading, std::memory_order_release);  // empty (checked above); the watcher frees it
            fading = nullptr;
        }
    }
}

void HotReloadEngine::setSlot(int slot, float value)
{
    if (slot < 0 || slot >= kMaxSlots) return;
    slots[slot].value.store(value, std::memory_order_relaxed);
    slots[slot].set.store(true, std::memory_order_release);
}

uint64_t HotReloadEngine::postAudition(Audition mode, long key, bool byStep)
{
    constexpr uint64_t keyMask = (uint64_t(1) << 45) - 1;
    uint64_t sequence = ((auditionWord.load(std::memory_order_relaxed) >> 48) + 1) & 0xffff;
    if (sequence == 0) sequence = 1;
    const uint64_t word = sequence << 48 | (uint64_t(mode) & 3) << 46 | uint64_t(byStep ? 1 : 0) << 45 |
                          (uint64_t(std::max(0L, key)) & keyMask);
    auditionWord.store(word, std::memory_order_release);
    return word;
}

void HotReloadEngine::requestAudition(Audition mode, long key, bool byStep)
{
    postAudition(mode, key, byStep);
}

// --- watcher thread --------------------------------------------------------------------------

void HotReloadEngine::bury(Instance* dead)
{
    if (dead && dead != bypass.get()) graveyard.push_back(std::shared_ptr<void>(std::unique_ptr<Instance>(dead)));
}

void HotReloadEngine::handValues(Instance* inst, std::unique_ptr<Snapshot> snapshot)
{
    snapshot->sequence = inst->nextSequence++;
    Snapshot* next = snapshot.get();
    inst->snapshots.push_back(std::move(snapshot));
    if (Snapshot* old = inst->mailbox.exchange(next, std::memory_order_acq_rel)) {
        // never taken, and out of the audio thread's reach now: free it at once
        for (auto it = inst->snapshots.begin(); it != inst->snapshots.end(); ++it)
            if (it->get() == old) {
                inst->snapshots.erase(it);
                break;
            }
    }
}

void HotReloadEngine::releaseSnapshots(Instance* inst)
{
    // the audio thread takes snapshots in the order they were handed: the ones before the one it acknowledged
    // last are left for good (the one it took but has not acknowledged yet is later than that, so kept)
    if (!inst) return;
    const long playing = inst->taken.load(std::memory_order_acquire);
    while (!inst->snapshots.empty() && inst->snapshots.front()->sequence < playing) inst->snapshots.pop_front();
}

void HotReloadEngine::collectGarbage()
{
    std::lock_guard<std::mutex> lock(opMutex);
    if (Instance* r = retired.exchange(nullptr, std::memory_order_acq_rel)) bury(r);
    releaseSnapshots(posted);
    if (Instance* now = current.load(std::memory_order_acquire); now != posted) releaseSnapshots(now);
    if (graveyard.empty()) return;
    // never wait for a background compile to free memory: try again at the next poll
    std::unique_lock<std::recursive_mutex> compiling(compilerMutex, std::try_to_lock);
    if (compiling) graveyard.clear();
}

void HotReloadEngine::post(Instance* next)
{
    if (!current.load(std::memory_order_acquire)) {
        activationMicros = nowMicros();
        activations++;
        current.store(next, std::memory_order_release);
    } else {
        bury(pending.exchange(next, std::memory_order_acq_rel));  // an unplayed older DSP: newest wins
    }
    posted = next;
    if (next->faust) tail = next->tail;
}

void HotReloadEngine::addEntry(const std::shared_ptr<Entry>& entry)
{
    entry->info.id = nextId++;
    entries.push_back(entry);
    while (entries.size() > kHistorySize) {
        graveyard.push_back(entries.front());  // its program may be the last user of a factory
        entries.pop_front();
    }
}

std::unique_ptr<HotReloadEngine::Instance> HotReloadEngine::instantiate(const std::shared_ptr<Structure>& s, bool llvm,
                                                                        const std::vector<double>& values,
                                                                        const Defaults& defaults, std::string& error)
{
    auto inst = std::make_unique<Instance>();
    inst->structure = s;
    inst->factory = llvm ? s->llvm : s->interpreter;
    inst->llvm = llvm;
    inst->faust.reset(inst->factory->create());
    if (!inst->faust) {
        error = "libfaust could not create an instance";
        return nullptr;
    }
    inst->inputs = inst->faust->getNumInputs();
    inst->outputs = inst->faust->getNumOutputs();
    inst->faust->init(sampleRate);
    MapUI ui;
    inst->faust->buildUserInterface(&ui);
    if (!inst->indexZones(ui, s->lifted, s->constants)) {
        error = "internal error: a control of the hidden group is not one of the lifted constants";
        return nullptr;
    }
    TailMeta meta;
    inst->faust->metadata(&meta);
    inst->tail = meta.seconds;
    // the exact values: libfaust's LLVM backend initialises a control from a slightly rounded copy
    // of its default (measured: ~1e-7 relative, ~5e-6 after a feedback loop)
    inst->values = values;
    inst->writeConstants();
    if (!s->widgetsResolved) {
        s->widgetAddress = widgetAddresses(s->widgetLabels, inst->params);
        s->widgetsResolved = true;
    }
    inst->widgetZones.assign(s->widgetAddress.size(), nullptr);
    for (size_t w = 0; w < s->widgetAddress.size(); ++w)
        if (!s->widgetAddress[w].empty()) inst->widgetZones[w] = inst->params.at(s->widgetAddress[w]);
    inst->defaults = defaults;
    inst->writeDefaults();
    bind(inst.get());
    return inst;
}

void HotReloadEngine::bind(Instance* inst)
{
    {
        std::lock_guard<std::mutex> lock(controlMutex);
        for (auto& [address, zone] : inst->params) {
            auto found = slotOf.find(address);
            int index = found == slotOf.end() ? -1 : found->second;
            if (index < 0 && slotOf.size() < (size_t) kMaxSlots) slotOf[address] = index = (int) slotOf.size();
            if (index >= 0) inst->bindings.emplace_back(index, zone);
        }
    }
    applySlots(inst);  // every value set by address, from the first sample
}

// A runtime instance of an entry's IR document (plan and values), built here, off the audio thread.
std::unique_ptr<HotReloadEngine::Instance> HotReloadEngine::instantiateModel(const std::shared_ptr<Entry>& entry,
                                                                             std::string& error)
{
    auto inst = std::make_unique<Instance>();
    try {
        auto* made = new runtime::FaustDsp<float>(entry->model);
        inst->faust.reset(made);
        inst->player = made;
        inst->model = entry->model;
        made->init(sampleRate);
    } catch (const std::exception& e) {
        error = std::string("the runtime could not build the model: ") + e.what();
        return nullptr;
    } catch (...) {
        error = "the runtime could not build the model: an unknown exception";
        return nullptr;
    }
    inst->inputs = inst->faust->getNumInputs();
    inst->outputs = inst->faust->getNumOutputs();
    MapUI ui;
    inst->faust->buildUserInterface(&ui);
    inst->indexZones(ui, false, 0);
    bind(inst.get());
    return inst;
}

bool HotReloadEngine::parameterSet(const std::string& address)
{
    std::lock_guard<std::mutex> lock(controlMutex);
    auto found = slotOf.find(address);
    return found != slotOf.end() && slots[found->second].set.load();
}

bool HotReloadEngine::update(const LiftedCode& lifted, const std::shared_ptr<Entry>& entry)
{
    if (!options.liftConstants || entries.empty()) return false;
    const std::shared_ptr<Entry> newest = entries.back();
    const auto& s = newest->structure;
    if (!s || !s->lifted || !lifted.lifted() || lifted.skeleton != s->skeleton || lifted.values.size() != s->constants) return false;
    for (auto& [index, capacity] : s->capacities)
        if (lifted.values[index] > capacity) return false;  // a delay line longer than compiled: compile
    const Defaults defaults = defaultsOf(lifted);
    if (defaults.size() != newest->defaults.size()) return false;
    std::vector<size_t> moved;  // widgets whose default changed: each must be a known parameter
    for (size_t w = 0; w < defaults.size(); ++w) {
        if (defaults[w] == newest->defaults[w]) continue;
        if (s->widgetAddress[w].empty()) return false;
        moved.push_back(w);
    }
    entry->structure = s;
    entry->values = lifted.values;
    entry->defaults = defaults;
    entry->info.compiled = false;
    addEntry(entry);
    std::vector<bool> unset;  // a new default plays only where no value was set
    for (size_t w : moved) unset.push_back(!parameterSet(s->widgetAddress[w]));
    // the playing DSP of the live model takes the values now (interpreter or LLVM tier); an LLVM build
    // that replaces it later copies them from it (promoteIfReady), so no update is lost
    // (and the one still playing until the audio thread takes the posted one, if of the same program)
    if (mode == Audition::Live && posted && posted->structure == s) {
        Instance* playing = current.load(std::memory_order_acquire);
        for (Instance* target : {posted, playing == posted ? nullptr : playing}) {
            if (target && target->faust && target->structure == s) {
                target->values = lifted.values;  // the watcher's copy (a promotion, a rate change)
                target->defaults = defaults;
                auto snapshot = std::make_unique<Snapshot>();
                snapshot->constants = lifted.values;
                for (size_t k = 0; k < moved.size(); ++k)
                    if (unset[k] && target->widgetZones[moved[k]])
                        snapshot->defaults.emplace_back(target->widgetZones[moved[k]], (FAUSTFLOAT) *defaults[moved[k]]);
                handValues(target, std::move(snapshot));  // the audio thread writes them at its next block
            }
        }
    }
    std::lock_guard<std::mutex> control(controlMutex);
    for (size_t w : moved) newestDefaults[s->widgetAddress[w]] = (float) *defaults[w];
    return true;
}

bool HotReloadEngine::compile(const std::string& body, const LiftedCode& lifted, const std::shared_ptr<Entry>& entry,
                              std::string& error)
{
    const bool llvm = options.backend == Backend::LLVM;  // Tiered: the interpreter first
    auto s = std::make_shared<Structure>();
    std::shared_ptr<Factory> factory;
    if (lifted.lifted() && lifted.values.size() <= options.maxLiftedConstants) {
        std::string ignored;  // a lifted literal the code needs constant (a delay length, ...): compile it plainly
        factory = Factory::compile(lifted.code, llvm, options.llvmOptLevel, ignored);
        if (factory) {
            s->lifted = true;
            s->skeleton = lifted.skeleton;
            s->code = lifted.code;
            s->constants = lifted.values.size();
            s->capacities = lifted.capacities;
            for (auto& widget : lifted.widgets) s->widgetLabels.push_back(widget.label);
        }
    }
    if (!factory) {
        factory = Factory::compile(body, llvm, options.llvmOptLevel, error);
        if (!factory) return false;
        s->code = body;
    }
    (llvm ? s->llvm : s->interpreter) = factory;
    const std::vector<double> values = s->lifted ? lifted.values : std::vector<double>();
    const Defaults defaults = s->lifted ? defaultsOf(lifted) : Defaults();
    std::lock_guard<std::mutex> lock(opMutex);
    std::unique_ptr<Instance> next = instantiate(s, llvm, values, defaults, error);
    if (!next) return false;
    entry->structure = s;
    entry->values = values;
    entry->defaults = defaults;
    if (!adopt(std::move(next), entry, error)) return false;
    if (options.backend == Backend::Tiered) queueLlvm(s);
    return true;
}

bool HotReloadEngine::adopt(std::unique_ptr<Instance> next, const std::shared_ptr<Entry>& entry, std::string& error)
{
    if (current.load() && (next->inputs != channelsIn || next->outputs != channelsOut)) {
        error = "the new DSP has " + std::to_string(next->inputs) + " inputs and " + std::to_string(next->outputs) +
                " outputs; the running one has " + std::to_string(channelsIn) + " and " + std::to_string(channelsOut);
        bury(next.release());
        return false;
    }
    if (!current.load()) {  // the first DSP fixes the channel counts; the audio thread sees them with it
        scratchOld.assign(next->outputs, std::vector<float>(maxBlock));
        scratchOldPtr.resize(next->outputs);
        for (int c = 0; c < next->outputs; ++c) scratchOldPtr[c] = scratchOld[c].data();
        inPtr.resize(next->inputs);
        outPtr.resize(next->outputs);
        channelsIn = next->inputs;
        channelsOut = next->outputs;
    }
    entry->info.compiled = true;
    addEntry(entry);
    {
        std::lock_guard<std::mutex> control(controlMutex);
        newestAddresses.clear();
        newestDefaults.clear();
        for (auto& [address, zone] : next->params) {
            newestAddresses.push_back(address);
            newestDefaults[address] = *zone;
        }
    }
    if (mode == Audition::Live) post(next.release());
    else if (mode == Audition::Bypass && !current.load()) post(bypass.get());
    else bury(next.release());
    return true;
}

void HotReloadEngine::queueLlvm(const std::shared_ptr<Structure>& s)
{
    if (s->llvm || s->llvmQueued || s->llvmFailed) return;
    std::shared_ptr<Structure> dropped;  // released after jobMutex: it may free a factory
    std::lock_guard<std::mutex> lock(jobMutex);
    if (job && (dropped = job->structure.lock())) dropped->llvmQueued = false;  // not started yet: the newest program wins
    job = std::make_unique<Job>();
    job->structure = s;
    job->code = s->code;
    s->llvmQueued = true;
    jobReady.notify_one();
}

void HotReloadEngine::compileLoop()
{
    std::unique_lock<std::mutex> lock(jobMutex);
    while (true) {
        jobReady.wait(lock, [this] { return stopping || job; });
        if (stopping) return;
        std::unique_ptr<Job> work = std::move(job);
        lock.unlock();
        work->result = Factory::compile(work->code, true, options.llvmOptLevel, work->error);
        lock.lock();
        done.push_back(std::move(work));
    }
}

void HotReloadEngine::collectCompiled()
{
    std::vector<std::unique_ptr<Job>> finished;
    {
        std::lock_guard<std::mutex> lock(jobMutex);
        finished.swap(done);
    }
    std::lock_guard<std::mutex> lock(opMutex);
    for (auto& work : finished) {
        auto s = work->structure.lock();
        if (!s) {  // superseded and forgotten meanwhile
            graveyard.push_back(work->result);
            continue;
        }
        s->llvmQueued = false;
        if (work->result) {
            s->llvm = work->result;
        } else {
            s->llvmFailed = true;
            std::fprintf(stderr, "adac hot reload: %s: the LLVM build failed, the interpreter keeps playing: %s\n", path.c_str(),
                         work->error.c_str());
        }
        graveyard.push_back(std::move(s));  // the last reference may be this one
    }
    promoteIfReady();
}

// Tiered: once the LLVM build of the program the posted interpreter instance plays is ready (and the
// options or a promote() say so), an LLVM instance with the same constants and parameters replaces it.
void HotReloadEngine::promoteIfReady()
{
    const long wanted = promoteWanted.load();
    auto finish = [&] { promoteReady = wanted; };
    if (options.backend != Backend::Tiered || !posted || !posted->faust || posted->llvm || !posted->structure) return finish();
    const auto s = posted->structure;
    if (!s->llvm) {
        queueLlvm(s);
        if (s->llvmFailed) finish();
        return;
    }
    if (!options.autoPromote && wanted == promoteReady) return;
    std::string error;
    std::unique_ptr<Instance> next = instantiate(s, true, posted->values, posted->defaults, error);
    if (!next) {
        s->llvmFailed = true;
        std::fprintf(stderr, "adac hot reload: %s: %s\n", path.c_str(), error.c_str());
        return finish();
    }
    post(next.release());
    finish();
}

void HotReloadEngine::applyAudition()
{
    const uint64_t word = auditionWord.load(std::memory_order_acquire);
    if (word == appliedWord) return;
    appliedWord = word;
    const auto wanted = Audition((word >> 46) & 3);
    const bool byStep = (word >> 45) & 1;
    const long key = long(word & ((uint64_t(1) << 45) - 1));
    std::lock_guard<std::mutex> lock(opMutex);
    std::shared_ptr<Entry> entry;
    if (wanted == Audition::Pinned) {
        for (auto it = entries.rbegin(); it != entries.rend() && !entry; ++it)
            if (byStep ? ((*it)->info.hasStep && (*it)->info.step <= key) : (*it)->info.id == key) entry = *it;
        if (!entry) {  // nothing changes
            auditionFound = false;
            auditionReady = word;
            return;
        }
    } else if (wanted == Audition::Live && mode != Audition::Live && !entries.empty()) {
        entry = entries.back();
    }
    if (wanted == Audition::Bypass && mode != Audition::Bypass && current.load()) post(bypass.get());
    if (entry) {  // a fresh instance of that model (its own state), best tier there is, its values
        const auto& s = entry->structure;
        std::string error;
        std::unique_ptr<Instance> next = s ? instantiate(s, s->llvm != nullptr, entry->values, entry->defaults, error)
                                           : instantiateModel(entry, error);
        if (next) post(next.release());
        else std::fprintf(stderr, "adac hot reload: %s: %s\n", path.c_str(), error.c_str());
    }
    mode = wanted;
    pinnedId = wanted == Audition::Pinned ? entry->info.id : 0;
    auditionFound = true;
    auditionReady = word;
}

std::string HotReloadEngine::tierName() const
{
    if (!posted) return "none";
    if (!posted->faust) return "bypass";
    if (posted->player) return "runtime";
    return posted->llvm ? "llvm" : "interpreter";
}

// Status file, then the control side's copies. The file says what `next` says and is written (temp
// file + rename) BEFORE status() shows the same counts, so a reader who sees a count in status()
// (waitfail, wait) finds it in the file.
void HotReloadEngine::publishState(EngineStatus next)
{
    std::vector<HistoryEntry> list;
    {
        std::lock_guard<std::mutex> lock(opMutex);
        next.tier = tierName();
        next.audition = mode == Audition::Live ? "live" : mode == Audition::Bypass ? "bypass" : "pin:" + std::to_string(pinnedId);
        next.lifted = !entries.empty() && entries.back()->structure && entries.back()->structure->lifted;
        next.runtime = !entries.empty() && entries.back()->model.plan;
        for (auto& entry : entries) list.push_back(entry->info);
    }
    if (!options.statusPath.empty()) {
        std::ostringstream json;
        json << "{\"path\": " << jsonString(path) << ", \"backend\": " << jsonString(next.backend) << ", \"tier\": "
             << jsonString(next.tier) << ", \"audition\": " << jsonString(next.audition) << ", \"reloads\": " << next.reloads
             << ", \"compiles\": " << next.compiles << ", \"updates\": " << next.updates << ", \"failures\": " << next.failures
             << ", \"last_compile_ms\": " << next.last_compile_ms << ", \"lifted\": " << (next.lifted ? "true" : "false")
             << ", \"runtime\": " << (next.runtime ? "true" : "false")
             << ", \"ok\": " << (next.last_error.empty() ? "true" : "false") << ", \"last_error\": " << jsonString(next.last_error)
             << "}\n";
        const std::string tmp = options.statusPath + ".tmp";
        {
            std::ofstream out(tmp, std::ios::trunc);
            out << json.str();
        }
        std::rename(tmp.c_str(), options.statusPath.c_str());
    }
    std::lock_guard<std::mutex> lock(controlMutex);
    state = next;
    historyCopy = std::move(list);
}

void HotReloadEngine::publish(const std::string& text)
{
    const auto started = std::chrono::steady_clock::now();
    auto entry = std::make_shared<Entry>();
    const std::string body = stripTag(text, entry->info);
    const size_t first = body.find_first_not_of(" \t\r\n");
    std::string error;
    bool updated = false, ok;
    if (first != std::string::npos && body[first] == '{') {  // an IR document: the runtime plays it
        ok = publishModel(body, entry, updated, error);
    } else {
        const LiftedCode lifted = options.liftConstants ? liftConstants(body) : LiftedCode{};
        {
            std::lock_guard<std::mutex> lock(opMutex);
            updated = update(lifted, entry);
        }
        ok = updated || compile(body, lifted, entry, error);
    }
    EngineStatus next = status();
    if (ok) {
        runningCode = text;
        next.reloads++;
        (updated ? next.updates : next.compiles)++;
        next.last_error.clear();
        next.last_compile_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    } else {
        next.failures++;
        next.last_error = error;
        std::fprintf(stderr, "adac hot reload: %s: %s\n", path.c_str(), error.c_str());
    }
    publishState(next);
}

bool HotReloadEngine::publishModel(const std::string& body, const std::shared_ptr<Entry>& entry, bool& updated,
                                   std::string& error)
{
    runtime::Model model;
    try {
        model = runtime::load(body);  // the parse and every check, here on the watcher thread
    } catch (const std::exception& e) {  // runtime::Error names the node; anything else (memory) too
        error = std::string("the IR document is refused: ") + e.what();
        return false;
    } catch (...) {
        error = "the IR document is refused: an unknown exception in the runtime's loader";
        return false;
    }
    std::lock_guard<std::mutex> lock(opMutex);
    const std::shared_ptr<Entry> newest = entries.empty() ? nullptr : entries.back();
    if (newest && newest->model.plan && newest->model.plan->signature == model.plan->signature) {
        // the same structure: new numbers for the playing instance, its state continues
        entry->model = {newest->model.plan, model.values};  // one plan for every entry of this structure
        entry->info.compiled = false;
        addEntry(entry);
        // a control whose default moved (the trained T60) plays the new default where no value was set
        const runtime::Controls& was = newest->model.values->controls;
        const runtime::Controls& now = model.values->controls;
        const runtime::ControlSpec* before[3] = {&was.rt60, &was.dryWet, &was.preDelay};
        const runtime::ControlSpec* after[3] = {&now.rt60, &now.dryWet, &now.preDelay};
        std::vector<int> moved;
        for (int i = 0; i < 3; ++i)
            if (model.plan->controls[i] && before[i]->defaultValue != after[i]->defaultValue) moved.push_back(i);
        std::vector<bool> unset;
        for (int i : moved) unset.push_back(!parameterSet(std::string("/adac/") + runtime::kControlNames[i]));
        Instance* playing = current.load(std::memory_order_acquire);
        if (mode == Audition::Live && posted && posted->player && posted->model.plan->signature == model.plan->signature) {
            for (Instance* target : {posted, playing == posted ? nullptr : playing}) {
                if (!target || !target->player || target->model.plan->signature != model.plan->signature) continue;
                target->model.values = model.values;  // the watcher's copy (a rate change re-applies it)
                auto snapshot = std::make_unique<Snapshot>();
                snapshot->values = model.values;
                for (size_t k = 0; k < moved.size(); ++k) {
                    auto zone = target->params.find(std::string("/adac/") + runtime::kControlNames[moved[k]]);
                    if (unset[k] && zone != target->params.end())
                        snapshot->defaults.emplace_back(zone->second, (FAUSTFLOAT) after[moved[k]]->defaultValue);
                }
                handValues(target, std::move(snapshot));
            }
        }
        std::lock_guard<std::mutex> control(controlMutex);
        for (int i : moved) newestDefaults[std::string("/adac/") + runtime::kControlNames[i]] = (float) after[i]->defaultValue;
        updated = true;
        return true;
    }
    // a new structure (or the first model): a new instance, crossfaded to
    entry->model = model;
    std::unique_ptr<Instance> next = instantiateModel(entry, error);
    if (!next) return false;
    return adopt(std::move(next), entry, error);
}

void HotReloadEngine::watch()
{
    struct stat last {};
    bool seen = false;
#ifdef __linux__
    // woken at once when a file of the watched folder is renamed into place or written (the poll period stays the
    // longest wait: a folder that does not exist yet, a network file system, the tiered compiler's results)
    const size_t slash = path.find_last_of('/');
    const std::string folder = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    int notify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (notify >= 0 && inotify_add_watch(notify, folder.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE) < 0) {
        close(notify);
        notify = -1;
    }
#endif
    while (!stopping) {
        collectGarbage();
        collectCompiled();
        applyAudition();
        {
            const EngineStatus shown = status();
            std::unique_lock<std::mutex> lock(opMutex);
            const bool moved = tierName() != shown.tier || (mode == Audition::Live) != (shown.audition == "live") ||
                               (mode == Audition::Bypass) != (shown.audition == "bypass") ||
                               (mode == Audition::Pinned && shown.audition != "pin:" + std::to_string(pinnedId));
            lock.unlock();
            if (moved) publishState(shown);  // a promotion or an audition switch
        }
        // acknowledged once status() shows them
        promoteDone = promoteReady;
        auditionDone = auditionReady;
        struct stat now {};
        if (stat(path.c_str(), &now) == 0) {
            const bool changed = !seen || now.st_mtim.tv_sec != last.st_mtim.tv_sec || now.st_mtim.tv_nsec != last.st_mtim.tv_nsec ||
                                 now.st_size != last.st_size || now.st_ino != last.st_ino;
            if (changed) {
                last = now;
                seen = true;
                std::ifstream file(path);
                std::stringstream text;
                text << file.rdbuf();
                const std::string code = text.str();
                if (!code.empty() && code != runningCode) publish(code);
                continue;  // look again at once: the newest content is what comes next, no backlog
            }
        }
#ifdef __linux__
        if (notify >= 0) {
            pollfd wake{notify, POLLIN, 0};
            if (poll(&wake, 1, options.pollMs) > 0) {
                char events[4096];
                while (read(notify, events, sizeof events) > 0) {}  // drained: the next stat() says what changed
            }
            continue;
        }
#endif
        std::this_thread::sleep_for(std::chrono::milliseconds(options.pollMs));
    }
#ifdef __linux__
    if (notify >= 0) close(notify);
#endif
}

// --- control side ----------------------------------------------------------------------------

void HotReloadEngine::prepare(int rate, int block, int crossfadeSamples)
{
    std::lock_guard<std::mutex> lock(opMutex);
    sampleRate = rate;
    maxBlock = std::max(1, block);
    options.crossfadeSamples = std::max(1, crossfadeSamples);
    // no process() runs: finish any swap at once (the stream restarts anyway)
    if (Instance* next = pending.exchange(nullptr)) bury(current.exchange(next));
    bury(fading);
    fading = nullptr;
    fadePos = 0;
    bury(retired.exchange(nullptr));
    for (auto& channel : scratchOld) channel.assign(maxBlock, 0.0f);
    for (size_t c = 0; c < scratchOld.size(); ++c) scratchOldPtr[c] = scratchOld[c].data();
    if (Instance* now = current.load(); now && now->faust) {
        takeValues(now);               // no process() runs: the newest values are this thread's to apply
        releaseSnapshots(now);
        now->faust->init(sampleRate);  // clears the state and resets every zone to its default...
        now->writeConstants();         // ...so the values go back in (a runtime instance keeps its Values)
        now->writeDefaults();
        applySlots(now);
    }
}

int HotReloadEngine::slot(const std::string& address)
{
    std::lock_guard<std::mutex> lock(controlMutex);
    auto found = slotOf.find(address);
    if (found != slotOf.end()) return found->second;
    if (slotOf.size() >= (size_t) kMaxSlots) return -1;
    const int index = (int) slotOf.size();
    slotOf[address] = index;
    return index;
}

bool HotReloadEngine::setParameter(const std::string& address, float value)
{
    const int index = slot(address);
    if (index < 0) return false;
    setSlot(index, value);
    return true;
}

bool HotReloadEngine::getParameter(const std::string& address, float& value)
{
    std::lock_guard<std::mutex> lock(controlMutex);
    auto known = newestDefaults.find(address);
    if (known == newestDefaults.end()) return false;
    auto found = slotOf.find(address);
    const bool set = found != slotOf.end() && slots[found->second].set.load();
    value = set ? slots[found->second].value.load() : known->second;
    return true;
}

std::vector<std::string> HotReloadEngine::addresses()
{
    std::lock_guard<std::mutex> lock(controlMutex);
    return newestAddresses;
}

EngineStatus HotReloadEngine::status()
{
    std::lock_guard<std::mutex> lock(controlMutex);
    EngineStatus copy = state;
    copy.activations = activations.load();
    return copy;
}

std::vector<HistoryEntry> HotReloadEngine::history()
{
    std::lock_guard<std::mutex> lock(controlMutex);
    return historyCopy;
}

static bool waitUntil(int timeoutMs, const std::function<bool()>& condition)
{
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    while (std::chrono::steady_clock::now() < deadline) {
        if (condition()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return condition();
}

bool HotReloadEngine::audition(Audition wanted, long id, int timeoutMs, std::string& error)
{
    const uint64_t word = postAudition(wanted, id, false);
    if (!waitUntil(timeoutMs, [&] { return auditionDone.load() == word; })) {
        error = "timeout";
        return false;
    }
    if (!auditionFound.load()) {
        error = "no history entry " + std::to_string(id);
        return false;
    }
    return true;
}

bool HotReloadEngine::promote(int timeoutMs)
{
    const long wanted = ++promoteWanted;
    return waitUntil(timeoutMs, [&] { return promoteDone.load() >= wanted; });
}

bool HotReloadEngine::waitForReloads(long count, int timeoutMs)
{
    return waitUntil(timeoutMs, [&] { return status().reloads >= count; });
}

bool HotReloadEngine::waitForFailures(long count, int timeoutMs)
{
    return waitUntil(timeoutMs, [&] { return status().failures >= count; });
}

bool HotReloadEngine::waitForTier(const std::string& tier, int timeoutMs)
{
    return waitUntil(timeoutMs, [&] { return status().tier == tier; });
}

}  // namespace adac
