// adac hot-reload engine: plays a FAUST program that is reloaded whenever its file changes.
//
// A watcher thread polls the file (mtime, size, inode) every few milliseconds. When it changes:
//  - fast path: if the new code differs from the newest compiled DSP only in float constants
//    (same skeleton, see ConstantLifter.h), the new constants are written into that DSP's hidden
//    controls: no compile, the state (reverb tail) continues, the audio thread picks the values
//    up at its next block;
//  - otherwise the (lifted) code is compiled with libfaust (LLVM or interpreter) on the watcher
//    thread, every parameter value is copied to the new instance by FAUST address, and the audio
//    thread crossfades from the old instance to the new one.
// Code that fails to compile keeps the old DSP playing; the error goes to stderr, to status() and
// to the status file. A deleted file is waited for. Under a flood of publishes there is no backlog:
// after each compile the newest file content is what comes next.
//
// Threads: the audio thread (process) never blocks, allocates or frees. Instances are freed by
// the watcher thread, under controlMutex, so control calls never touch a freed instance.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace adac {

enum class Backend { Interpreter, LLVM };

struct EngineOptions {
    Backend backend = Backend::LLVM;
    int crossfadeSamples = 480;   // 10 ms at 48 kHz
    int llvmOptLevel = -1;        // libfaust's LLVM optimisation level (-1: the highest)
    bool liftConstants = true;    // enable the no-compile fast path
    int pollMs = 5;               // watcher poll period
    std::string statusPath;       // JSON status file, rewritten (temp + rename) after every event; "" for none
};

struct EngineStatus {
    long reloads = 0;          // publishes applied: compiles + updates
    long compiles = 0;         // of which compiled and crossfaded
    long updates = 0;          // of which constant-only updates (fast path)
    long activations = 0;      // swaps/updates the audio thread has started playing
    long failures = 0;         // publishes that did not compile
    double last_compile_ms = 0;  // time of the last compile (or update), file read included
    std::string last_error;    // empty after a successful reload
    std::string backend;
    bool lifted = false;       // the newest DSP takes constant-only updates
};

class HotReloadEngine {
public:
    HotReloadEngine(std::string path, int sampleRate, int maxBlock, EngineOptions options = {});
    ~HotReloadEngine();

    // audio thread: never blocks, never allocates; any count (split into maxBlock pieces)
    void process(int count, float** inputs, float** outputs);
    int numInputs() const { return channelsIn.load(); }
    int numOutputs() const { return channelsOut.load(); }

    // control side (any thread but the audio thread)
    void setParameter(const std::string& address, float value);
    bool getParameter(const std::string& address, float& value);
    std::vector<std::string> addresses();  // of the newest DSP's parameters (lifted constants excluded)
    EngineStatus status();
    bool waitForReloads(long count, int timeoutMs);
    bool waitForFailures(long count, int timeoutMs);
    // steady-clock microseconds at the start of the first block played by the newest DSP or values
    long long lastActivationMicros() const { return activationMicros.load(); }

private:
    struct Instance;
    void watch();
    bool compile(const std::string& code, std::string& error);
    bool update(const std::string& code);
    Instance* newest();  // watcher thread: pending, else current
    void writeStatus();

    std::string path;
    int sampleRate, maxBlock;
    EngineOptions options;
    std::atomic<int> channelsIn{0}, channelsOut{0};

    std::atomic<Instance*> current{nullptr}, pending{nullptr}, retired{nullptr};
    Instance* fading = nullptr;  // audio thread only
    int fadePos = 0;
    std::atomic<long> valueGeneration{0};
    long seenGeneration = 0;     // audio thread only

    std::mutex controlMutex;
    std::map<std::string, float> parameters;  // every value set, by address, reapplied after a swap
    EngineStatus state;
    std::string runningCode;
    std::atomic<bool> stopping{false};
    std::atomic<long long> activationMicros{0};
    std::atomic<long> activations{0};
    std::vector<std::vector<float>> scratchOld;
    std::vector<float*> scratchOldPtr, inPtr, outPtr;
    std::thread watcher;
};

}  // namespace adac
