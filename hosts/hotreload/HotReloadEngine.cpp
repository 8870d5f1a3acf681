#include "HotReloadEngine.h"

#include <sys/stat.h>

#include <algorithm>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "ConstantLifter.h"
#include "faust/dsp/dsp.h"
#include "faust/dsp/interpreter-dsp.h"
#include "faust/dsp/llvm-dsp.h"
#include "faust/gui/MapUI.h"

namespace adac {

struct HotReloadEngine::Instance {
    dsp_factory* factory = nullptr;
    bool interpreter = true;
    std::unique_ptr<dsp> instance;
    MapUI ui;
    std::map<std::string, FAUSTFLOAT*> params;  // address as the plain (unlifted) program has it -> zone
    std::vector<FAUSTFLOAT*> constants;        // zones of the lifted constants, by index
    std::string skeleton;
    bool lifted = false;
    ~Instance()
    {
        instance.reset();
        if (factory) {
            if (interpreter) deleteInterpreterDSPFactory(static_cast<interpreter_dsp_factory*>(factory));
            else deleteDSPFactory(static_cast<llvm_dsp_factory*>(factory));
        }
    }

    // Sort the zones into parameters and lifted constants. The hidden group of the constants can add
    // a top-level group to the UI: when the program's own widgets all live in one group G, its
    // addresses are /G/... but the lifted program's are /<name>/G/...; strip that extra level.
    bool indexZones(size_t nConstants)
    {
        constants.assign(nConstants, nullptr);
        std::vector<std::pair<std::vector<std::string>, FAUSTFLOAT*>> user;
        const std::string prefix = std::string("/") + kLiftPrefix;
        for (auto& [address, zone] : ui.getFullpathMap()) {
            const size_t slash = address.rfind('/');
            const std::string last = address.substr(slash);
            if (lifted && last.compare(0, prefix.size(), prefix) == 0) {
                const size_t index = std::stoul(last.substr(prefix.size()));
                if (index < nConstants) constants[index] = zone;
                continue;
            }
            std::vector<std::string> parts;
            std::stringstream split(address);
            for (std::string part; std::getline(split, part, '/');)
                if (!part.empty()) parts.push_back(part);
            user.emplace_back(parts, zone);
        }
        for (auto* zone : constants)
            if (!zone) return false;
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

static long long nowMicros()
{
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static std::string jsonString(const std::string& text)
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

HotReloadEngine::HotReloadEngine(std::string p, int sr, int block, EngineOptions o)
    : path(std::move(p)), sampleRate(sr), maxBlock(block), options(std::move(o))
{
    state.backend = options.backend == Backend::LLVM ? "llvm" : "interpreter";
    if (options.crossfadeSamples < 1) options.crossfadeSamples = 1;
    watcher = std::thread([this] { watch(); });
}

HotReloadEngine::~HotReloadEngine()
{
    stopping = true;
    watcher.join();
    delete current.exchange(nullptr);
    delete pending.exchange(nullptr);
    delete retired.exchange(nullptr);
    delete fading;
}

HotReloadEngine::Instance* HotReloadEngine::newest()
{
    Instance* p = pending.load();
    return p ? p : current.load();
}

bool HotReloadEngine::update(const std::string& code)
{
    if (!options.liftConstants) return false;
    const auto started = std::chrono::steady_clock::now();
    Instance* target = newest();
    if (!target || !target->lifted) return false;
    const LiftedCode lifted = liftConstants(code);
    if (!lifted.lifted() || lifted.skeleton != target->skeleton || lifted.values.size() != target->constants.size()) return false;
    {
        std::lock_guard<std::mutex> lock(controlMutex);
        for (size_t i = 0; i < lifted.values.size(); ++i) *target->constants[i] = (FAUSTFLOAT) lifted.values[i];
        state.last_compile_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    }
    valueGeneration++;  // the audio thread notes the first block that plays the new values
    return true;
}

bool HotReloadEngine::compile(const std::string& code, std::string& error)
{
    const auto started = std::chrono::steady_clock::now();
    const LiftedCode lifted = options.liftConstants ? liftConstants(code) : LiftedCode{};
    const char* argv[] = {"-I", "/usr/share/faust"};
    auto build = [&](const std::string& text, std::string& err) -> std::unique_ptr<Instance> {
        auto next = std::make_unique<Instance>();
        if (options.backend == Backend::LLVM) {
            next->interpreter = false;
            next->factory = createDSPFactoryFromString("adac", text, 2, argv, "", err, options.llvmOptLevel);
            if (next->factory) next->instance.reset(static_cast<llvm_dsp_factory*>(next->factory)->createDSPInstance());
        } else {
            next->factory = createInterpreterDSPFactoryFromString("adac", text, 2, argv, err);
            if (next->factory) next->instance.reset(static_cast<interpreter_dsp_factory*>(next->factory)->createDSPInstance());
        }
        if (!next->factory || !next->instance) {
            if (err.empty()) err = "compilation failed";
            return nullptr;
        }
        return next;
    };
    std::unique_ptr<Instance> next;
    if (lifted.lifted()) {
        std::string ignored;  // a lifted literal the code needs constant (a delay length, ...): compile it plainly
        next = build(lifted.code, ignored);
        if (next) {
            next->lifted = true;
            next->skeleton = lifted.skeleton;
        }
    }
    if (!next) next = build(code, error);
    if (!next) return false;
    dsp* d = next->instance.get();
    if (current.load() && (d->getNumInputs() != channelsIn || d->getNumOutputs() != channelsOut)) {
        error = "the new DSP has " + std::to_string(d->getNumInputs()) + " inputs and " + std::to_string(d->getNumOutputs()) +
                " outputs; the running one has " + std::to_string(channelsIn) + " and " + std::to_string(channelsOut);
        return false;
    }
    d->init(sampleRate);
    d->buildUserInterface(&next->ui);
    if (!next->indexZones(next->lifted ? lifted.values.size() : 0)) {
        error = "internal error: the lifted constants' controls were not found";
        return false;
    }
    // the exact values: libfaust's LLVM backend initialises a control from a slightly rounded copy
    // of its default (measured: ~1e-7 relative, ~5e-6 after a feedback loop)
    for (size_t i = 0; i < next->constants.size(); ++i) *next->constants[i] = (FAUSTFLOAT) lifted.values[i];
    {
        std::lock_guard<std::mutex> lock(controlMutex);
        // keep knob positions: the newest DSP's values by address, then every value set by address
        if (Instance* running = newest()) {
            for (auto& [address, zone] : running->params) {
                auto found = next->params.find(address);
                if (found != next->params.end()) *found->second = *zone;
            }
        }
        for (auto& [address, value] : parameters) {
            auto found = next->params.find(address);
            if (found != next->params.end()) *found->second = value;
        }
        state.last_compile_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
        state.lifted = next->lifted;
    }
    if (!current.load()) {
        const int nin = d->getNumInputs(), nout = d->getNumOutputs();
        scratchOld.assign(nout, std::vector<float>(maxBlock));
        scratchOldPtr.resize(nout);
        for (int c = 0; c < nout; ++c) scratchOldPtr[c] = scratchOld[c].data();
        inPtr.resize(nin);
        outPtr.resize(nout);
        channelsIn = nin;
        channelsOut = nout;
        activationMicros = nowMicros();
        activations++;
        current.store(next.release());
    } else {
        Instance* dropped = pending.exchange(next.release());  // an unplayed older DSP: newest wins
        std::lock_guard<std::mutex> lock(controlMutex);
        delete dropped;
    }
    return true;
}

// The status file says what `s` says; written (temp file + rename) BEFORE the engine's in-memory state
// shows the same counts, so a reader who sees a count in status() (waitfail, wait) finds it in the file.
static void writeStatusFile(const std::string& statusPath, const std::string& path, const EngineStatus& s)
{
    if (statusPath.empty()) return;
    std::ostringstream json;
    json << "{\"path\": " << jsonString(path) << ", \"backend\": " << jsonString(s.backend) << ", \"reloads\": " << s.reloads
         << ", \"compiles\": " << s.compiles << ", \"updates\": " << s.updates << ", \"failures\": " << s.failures
         << ", \"last_compile_ms\": " << s.last_compile_ms << ", \"lifted\": " << (s.lifted ? "true" : "false")
         << ", \"ok\": " << (s.last_error.empty() ? "true" : "false") << ", \"last_error\": " << jsonString(s.last_error) << "}\n";
    const std::string tmp = statusPath + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << json.str();
    }
    std::rename(tmp.c_str(), statusPath.c_str());
}

void HotReloadEngine::writeStatus()
{
    writeStatusFile(options.statusPath, path, status());
}

void HotReloadEngine::watch()
{
    struct stat last {};
    bool seen = false;
    while (!stopping) {
        if (retired.load()) {  // free what the audio thread has finished with
            std::lock_guard<std::mutex> lock(controlMutex);
            delete retired.exchange(nullptr);
        }
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
                if (!code.empty() && code != runningCode) {
                    std::string error;
                    const bool updated = update(code);
                    // the counters change here only (this thread): count in a copy, write the status file
                    // from it, then publish the copy's counts, so the file is never behind status()
                    EngineStatus next = status();
                    const bool ok = updated || compile(code, error);
                    if (ok) {
                        runningCode = code;
                        next.reloads++;
                        (updated ? next.updates : next.compiles)++;
                        next.last_error.clear();
                    } else {
                        next.failures++;
                        next.last_error = error;
                        std::fprintf(stderr, "adac hot reload: %s: %s\n", path.c_str(), error.c_str());
                    }
                    {
                        std::lock_guard<std::mutex> lock(controlMutex);  // compile() set these: take them as they are now
                        next.last_compile_ms = state.last_compile_ms;
                        next.lifted = state.lifted;
                        next.backend = state.backend;
                    }
                    writeStatusFile(options.statusPath, path, next);
                    std::lock_guard<std::mutex> lock(controlMutex);
                    state.reloads = next.reloads;
                    state.updates = next.updates;
                    state.compiles = next.compiles;
                    state.failures = next.failures;
                    state.last_error = next.last_error;
                }
                continue;  // look again at once: the newest content is what comes next, no backlog
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(options.pollMs));
    }
}

void HotReloadEngine::process(int count, float** inputs, float** outputs)
{
    const int nin = channelsIn.load(), nout = channelsOut.load();
    for (int done = 0; done < count; done += maxBlock) {
        const int n = std::min(maxBlock, count - done);
        Instance* now = current.load();
        if (!now) {
            for (int c = 0; c < nout; ++c)
                for (int i = 0; i < n; ++i) outputs[c][done + i] = 0;
            continue;
        }
        for (int c = 0; c < nin; ++c) inPtr[c] = inputs[c] + done;
        for (int c = 0; c < nout; ++c) outPtr[c] = outputs[c] + done;
        bool activated = false;
        // start a crossfade old -> new; only when the last faded-out instance has been collected,
        // so the audio thread never frees anything
        if (!fading && !retired.load()) {
            if (Instance* next = pending.exchange(nullptr)) {
                fading = now;
                current.store(next);
                now = next;
                fadePos = 0;
                activated = true;
            }
        }
        const long generation = valueGeneration.load();
        if (generation != seenGeneration) {
            seenGeneration = generation;
            activated = true;
        }
        if (activated) {
            activationMicros = nowMicros();
            activations++;
        }
        if (!fading) {
            now->instance->compute(n, inPtr.data(), outPtr.data());
            continue;
        }
        fading->instance->compute(n, inPtr.data(), scratchOldPtr.data());
        now->instance->compute(n, inPtr.data(), outPtr.data());
        const int fade = options.crossfadeSamples;
        for (int i = 0; i < n; ++i) {
            const float a = fadePos < fade ? float(fadePos) / fade : 1.0f;
            for (int c = 0; c < nout; ++c) outPtr[c][i] = (1 - a) * scratchOldPtr[c][i] + a * outPtr[c][i];
            if (fadePos < fade) fadePos++;
        }
        if (fadePos >= fade) {
            retired.store(fading);  // empty (checked above); the watcher frees it
            fading = nullptr;
        }
    }
}

void HotReloadEngine::setParameter(const std::string& address, float value)
{
    std::lock_guard<std::mutex> lock(controlMutex);
    parameters[address] = value;
    for (Instance* target : {current.load(), pending.load()}) {
        if (!target) continue;
        auto found = target->params.find(address);
        if (found != target->params.end()) *found->second = value;
    }
}

bool HotReloadEngine::getParameter(const std::string& address, float& value)
{
    std::lock_guard<std::mutex> lock(controlMutex);
    Instance* running = current.load();
    if (!running) return false;
    auto found = running->params.find(address);
    if (found == running->params.end()) return false;
    value = *found->second;
    return true;
}

std::vector<std::string> HotReloadEngine::addresses()
{
    std::lock_guard<std::mutex> lock(controlMutex);
    std::vector<std::string> out;
    Instance* p = pending.load();
    if (Instance* running = p ? p : current.load())
        for (auto& entry : running->params) out.push_back(entry.first);
    return out;
}

EngineStatus HotReloadEngine::status()
{
    std::lock_guard<std::mutex> lock(controlMutex);
    EngineStatus copy = state;
    copy.activations = activations.load();
    return copy;
}

bool HotReloadEngine::waitForReloads(long count, int timeoutMs)
{
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    while (std::chrono::steady_clock::now() < deadline) {
        if (status().reloads >= count) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return status().reloads >= count;
}

bool HotReloadEngine::waitForFailures(long count, int timeoutMs)
{
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    while (std::chrono::steady_clock::now() < deadline) {
        if (status().failures >= count) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return status().failures >= count;
}

}  // namespace adac
