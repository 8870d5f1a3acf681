#include "HotReloadEngine.h"

#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <sstream>

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
    ~Instance()
    {
        instance.reset();
        if (factory) {
            if (interpreter) deleteInterpreterDSPFactory(static_cast<interpreter_dsp_factory*>(factory));
            else deleteDSPFactory(static_cast<llvm_dsp_factory*>(factory));
        }
    }
};

static long long nowMicros()
{
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

HotReloadEngine::HotReloadEngine(std::string p, int sr, int block, Backend b, int fade)
    : path(std::move(p)), sampleRate(sr), maxBlock(block), crossfade(fade), backend(b)
{
    state.backend = backend == Backend::LLVM ? "llvm" : "interpreter";
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

bool HotReloadEngine::compile(const std::string& code, std::string& error)
{
    auto started = std::chrono::steady_clock::now();
    auto next = std::make_unique<Instance>();
    const char* argv[] = {"-I", "/usr/share/faust"};
    if (backend == Backend::LLVM) {
        next->interpreter = false;
        next->factory = createDSPFactoryFromString("adac", code, 2, argv, "", error, -1);
        if (next->factory) next->instance.reset(static_cast<llvm_dsp_factory*>(next->factory)->createDSPInstance());
    } else {
        next->factory = createInterpreterDSPFactoryFromString("adac", code, 2, argv, error);
        if (next->factory) next->instance.reset(static_cast<interpreter_dsp_factory*>(next->factory)->createDSPInstance());
    }
    if (!next->factory || !next->instance) {
        if (error.empty()) error = "compilation failed";
        return false;
    }
    dsp* d = next->instance.get();
    if (current.load() && (d->getNumInputs() != channelsIn || d->getNumOutputs() != channelsOut)) {
        error = "the new DSP has " + std::to_string(d->getNumInputs()) + " inputs and " + std::to_string(d->getNumOutputs()) +
                " outputs; the running one has " + std::to_string(channelsIn) + " and " + std::to_string(channelsOut);
        return false;
    }
    d->init(sampleRate);
    d->buildUserInterface(&next->ui);
    {
        std::lock_guard<std::mutex> lock(controlMutex);
        // keep knob positions: values set by address, then the running DSP's own values
        if (Instance* running = current.load()) {
            for (auto& [address, zone] : running->ui.getFullpathMap())
                if (next->ui.getParamZone(address)) next->ui.setParamValue(address, *zone);
        }
        for (auto& [address, value] : parameters)
            if (next->ui.getParamZone(address)) next->ui.setParamValue(address, value);
        state.last_compile_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    }
    if (!current.load()) {
        channelsIn = d->getNumInputs();
        channelsOut = d->getNumOutputs();
        scratchOld.assign(channelsOut, std::vector<float>(maxBlock));
        scratchNew.assign(channelsOut, std::vector<float>(maxBlock));
        current.store(next.release());
        activationMicros = nowMicros();
        activations++;
    } else {
        delete pending.exchange(next.release());  // an unplayed older DSP is dropped: newest wins
    }
    return true;
}

void HotReloadEngine::watch()
{
    struct stat last {};
    bool seen = false;
    while (!stopping) {
        delete retired.exchange(nullptr);  // free what the audio thread has finished with
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
                    if (compile(code, error)) {
                        runningCode = code;
                        std::lock_guard<std::mutex> lock(controlMutex);
                        state.reloads++;
                        state.last_error.clear();
                    } else {
                        std::lock_guard<std::mutex> lock(controlMutex);
                        state.failures++;
                        state.last_error = error;
                        std::fprintf(stderr, "adac hot reload: %s: %s\n", path.c_str(), error.c_str());
                    }
                }
                continue;  // look again at once: the newest content is compiled next, no backlog
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

void HotReloadEngine::process(int count, float** inputs, float** outputs)
{
    Instance* now = current.load();
    if (!now) {
        for (int c = 0; c < channelsOut; ++c)
            for (int i = 0; i < count; ++i) outputs[c][i] = 0;
        return;
    }
    if (!fading) {
        if (Instance* next = pending.exchange(nullptr)) {  // start the crossfade old -> new
            fading = now;
            current.store(next);
            now = next;
            fadePos = 0;
            activationMicros = nowMicros();
            activations++;
        }
    }
    if (!fading) {
        now->instance->compute(count, inputs, outputs);
        return;
    }
    std::vector<float*> oldOut(channelsOut);
    for (int c = 0; c < channelsOut; ++c) oldOut[c] = scratchOld[c].data();
    fading->instance->compute(count, inputs, oldOut.data());
    now->instance->compute(count, inputs, outputs);
    for (int i = 0; i < count; ++i) {
        const float a = fadePos < crossfade ? float(fadePos) / crossfade : 1.0f;
        for (int c = 0; c < channelsOut; ++c) outputs[c][i] = (1 - a) * oldOut[c][i] + a * outputs[c][i];
        if (fadePos < crossfade) fadePos++;
    }
    if (fadePos >= crossfade) {
        Instance* done = fading;
        fading = nullptr;
        delete retired.exchange(done);  // normally empty: the watcher frees it off the audio thread
    }
}

void HotReloadEngine::setParameter(const std::string& address, float value)
{
    std::lock_guard<std::mutex> lock(controlMutex);
    parameters[address] = value;
    if (Instance* running = current.load())
        if (running->ui.getParamZone(address)) running->ui.setParamValue(address, value);
}

bool HotReloadEngine::getParameter(const std::string& address, float& value)
{
    std::lock_guard<std::mutex> lock(controlMutex);
    Instance* running = current.load();
    if (!running || !running->ui.getParamZone(address)) return false;
    value = running->ui.getParamValue(address);
    return true;
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
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return false;
}

}  // namespace adac
