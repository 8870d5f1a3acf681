// adac hot-reload engine: plays a FAUST program that is recompiled whenever its file changes.
//
// A watcher thread polls the file (mtime, size, inode) every few milliseconds; when it changes,
// the thread compiles the new code with libfaust (LLVM or interpreter backend) off the audio
// thread, restores every parameter value by FAUST address, and hands the new instance to the
// audio thread, which crossfades from the old to the new DSP. A file that fails to compile keeps
// the old DSP playing and records the error; a deleted file is waited for. Under a flood of
// publishes there is no backlog: after each compile the newest file content is what comes next.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

class dsp;
class dsp_factory;

namespace adac {

enum class Backend { Interpreter, LLVM };

struct EngineStatus {
    long reloads = 0;          // successful swaps requested (compiled and handed over)
    long activations = 0;      // swaps the audio thread has started
    long failures = 0;         // publishes that did not compile
    double last_compile_ms = 0;
    std::string last_error;
    std::string backend;
};

class HotReloadEngine {
public:
    HotReloadEngine(std::string path, int sampleRate, int maxBlock, Backend backend, int crossfadeSamples = 480);
    ~HotReloadEngine();

    // audio thread: never blocks, never allocates
    void process(int count, float** inputs, float** outputs);
    int numInputs() const { return channelsIn; }
    int numOutputs() const { return channelsOut; }

    // control side
    void setParameter(const std::string& address, float value);
    bool getParameter(const std::string& address, float& value);
    EngineStatus status();
    bool waitForReloads(long count, int timeoutMs);
    // microseconds (steady clock) when the newest DSP started playing, and the mtime-based publish time
    long long lastActivationMicros() const { return activationMicros.load(); }

private:
    struct Instance;
    void watch();
    bool compile(const std::string& code, std::string& error);

    std::string path;
    int sampleRate, maxBlock, crossfade;
    Backend backend;
    int channelsIn = 0, channelsOut = 0;

    std::atomic<Instance*> current{nullptr}, pending{nullptr}, retired{nullptr};
    Instance* fading = nullptr;  // audio thread only
    int fadePos = 0;

    std::mutex controlMutex;
    std::map<std::string, float> parameters;  // every value set, by address, reapplied after a swap
    EngineStatus state;
    std::string runningCode;
    std::atomic<bool> stopping{false};
    std::atomic<long long> activationMicros{0};
    std::atomic<long> activations{0};
    std::vector<std::vector<float>> scratchOld, scratchNew;
    std::thread watcher;
};

}  // namespace adac
