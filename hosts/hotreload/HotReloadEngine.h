// adac hot-reload engine: plays a model that is reloaded whenever its file changes: an IR document (what
// adac.HotReload publishes, played by the C++ runtime, runtime/) or a FAUST program (a hand-written .dsp).
//
// A watcher thread polls the file (mtime, size, inode) every few milliseconds. When it changes:
//  - the first line may be the publisher's tag `// adac-publish step=<int> loss=<float|nan>`
//    (either key optional): it is parsed into the history entry and stripped before anything else;
//  - an IR document (the text starts with `{`): loaded by the runtime on the watcher thread (no compiler).
//    Same structure as the newest model (runtime::Plan::signature): its Values go to the playing instance
//    as an immutable snapshot the audio thread takes at the start of a block (the state continues); the
//    snapshot it let go of is freed by the watcher. Otherwise (first load, a structure change) a new
//    runtime instance is built off the audio thread and crossfaded to, as a compile is;
//  - a FAUST program:
//  - FAUST fast path: if the new code differs from the newest published model only in float constants,
//    delay lengths within the compiled capacities, widget defaults and ranges and adac's metadata
//    (same skeleton, see ConstantLifter.h), the new constants (and a new default of a parameter never
//    set) go to the playing DSP as a snapshot the audio thread writes into its hidden controls at the
//    start of a block: no compile, the state (reverb tail) continues;
//  - otherwise the (lifted) code is compiled with libfaust on the watcher thread and the audio
//    thread crossfades from the old instance to the new one. With Backend::Tiered the watcher
//    compiles with the interpreter (fast to compile), plays it at once, and a compiler thread builds
//    the LLVM version in the background; when it is ready the watcher builds an LLVM instance with
//    the values the interpreter instance plays now (constants and parameters) and crossfades to it.
// Every published model (compile or update) is a history entry (the last kHistorySize are kept,
// with the compiled program they need); audition() plays the live model, a pinned entry (a fresh
// instance of that entry's program and values) or the dry input, always through a crossfade.
// Code that fails to compile keeps the old DSP playing; the error goes to stderr, to status() and
// to the status file. A deleted file is waited for. Under a flood of publishes there is no backlog:
// after each compile the newest file content is what comes next.
//
// Threads and ownership:
//  - audio thread (process, setSlot, requestAudition): takes no lock, allocates and frees nothing,
//    makes no system call. It reads the instance pointers (atomics), takes an instance's newest values
//    snapshot (an atomic exchange; it acknowledges the one it plays), copies the parameter slots (atomics)
//    into the zones of the instances it computes, and hands a faded-out instance back through `retired`.
//    Nothing the audio thread computes is written by another thread.
//  - watcher thread: the only thread that creates instances (off the audio thread) and the only one
//    that frees them (what the audio thread retired, or a pending instance never played), and the only
//    one that makes and frees values snapshots (one the audio thread acknowledged it left). It holds
//    opMutex while it touches instances; prepare() takes the same mutex.
//  - compiler thread (Tiered only): compiles LLVM factories; hands them to the watcher.
//  - control threads (setParameter, status, history, audition, promote, waits): never touch an
//    instance; they talk to the watcher through controlMutex-guarded copies and atomics.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace adac {

struct LiftedCode;  // ConstantLifter.h

enum class Backend { Interpreter, LLVM, Tiered };
enum class Audition { Live = 0, Pinned = 1, Bypass = 2 };

struct EngineOptions {
    Backend backend = Backend::LLVM;
    int crossfadeSamples = 480;   // 10 ms at 48 kHz
    int llvmOptLevel = -1;        // libfaust's LLVM optimisation level (-1: the highest)
    bool liftConstants = true;    // enable the no-compile fast path
    // A program with more liftable constants is compiled plainly (every change compiles): libfaust's compile time
    // grows faster than the count of controls (1,150 at 16 lines with GEQ: seconds; 8,000 at 64: over 10 minutes,
    // while the plain program takes about 10 s).
    size_t maxLiftedConstants = 2048;
    bool autoPromote = true;      // Tiered: swap to the LLVM build as soon as it is ready (false: on promote())
    int pollMs = 5;               // watcher poll period
    std::string statusPath;       // JSON status file, rewritten (temp + rename) after every event; "" for none
};

struct EngineStatus {
    long reloads = 0;          // publishes applied: compiles + updates
    long compiles = 0;         // of which compiled (or, an IR document, a new runtime instance) and crossfaded
    long updates = 0;          // of which values-only updates (no compile, no new instance)
    long activations = 0;      // swaps/updates the audio thread has started playing
    long failures = 0;         // publishes that did not compile
    double last_compile_ms = 0;  // time of the last compile (or update): from the file's text to the DSP handed over
    std::string last_error;    // empty after a successful reload
    std::string backend;       // llvm | interpreter | tiered
    std::string tier = "none"; // of the DSP handed to the audio thread last: interpreter | llvm | runtime | bypass | none
    std::string audition = "live";  // live | pin:<id> | bypass
    bool lifted = false;       // the newest FAUST program takes constant-only updates
    bool runtime = false;      // the newest model is an IR document played by the runtime
};

// One published model, as history() lists it.
struct HistoryEntry {
    long id = 0;               // 1, 2, ... in publish order (failed publishes get none)
    bool hasStep = false;
    long step = 0;             // from the tag line
    bool hasLoss = false;
    double loss = 0;           // from the tag line (may be nan)
    bool compiled = false;     // a compile (true) or a constant-only update (false)
};

constexpr int kMaxSlots = 256;        // parameters settable by address (beyond: setParameter refuses)
constexpr size_t kHistorySize = 32;   // published models kept for audition

class HotReloadEngine {
public:
    HotReloadEngine(std::string path, int sampleRate, int maxBlock, EngineOptions options = {});
    ~HotReloadEngine();

    // --- audio thread: no lock, no allocation, no system call ---
    // any count (split into maxBlock pieces); nin/nout: the caller's channel counts, read from
    // numInputs()/numOutputs() (silence while they differ from the engine's: the first DSP came meanwhile)
    void process(int count, int nin, float** inputs, int nout, float** outputs);
    void setSlot(int slot, float value);  // a slot from slot(); out of range: ignored
    // ask the watcher to play the live model, the newest entry whose step is <= key (byStep) or the
    // entry with id key (!byStep), or the dry input; applied within a poll period
    void requestAudition(Audition mode, long key, bool byStep);
    int numInputs() const { return channelsIn.load(); }
    int numOutputs() const { return channelsOut.load(); }
    double tailSeconds() const { return tail.load(); }  // `declare tail_seconds` of the live DSP, else 10

    // --- control side (any thread but the audio thread) ---
    // While no process() call runs (a plugin's prepareToPlay): new rate and block size; every instance
    // is re-initialised at the new rate (state cleared) with its values; nothing is compiled.
    void prepare(int sampleRate, int maxBlock, int crossfadeSamples);
    int slot(const std::string& address);  // the parameter slot of an address (made on first use); -1: table full
    bool setParameter(const std::string& address, float value);  // kept across reloads; false: table full
    bool getParameter(const std::string& address, float& value);  // false: the newest DSP has no such address
    std::vector<std::string> addresses();  // of the newest DSP's parameters (lifted constants excluded)
    EngineStatus status();
    std::vector<HistoryEntry> history();
    // requestAudition by id, then wait until the watcher has applied it; false + error when no such entry
    bool audition(Audition mode, long id, int timeoutMs, std::string& error);
    // Tiered: wait until the LLVM build of what plays is ready and handed to the audio thread
    bool promote(int timeoutMs);
    bool waitForReloads(long count, int timeoutMs);
    bool waitForFailures(long count, int timeoutMs);
    bool waitForTier(const std::string& tier, int timeoutMs);
    // steady-clock microseconds at the start of the first block played by the newest DSP or values
    long long lastActivationMicros() const { return activationMicros.load(); }

private:
    struct Instance;
    struct Structure;
    struct Factory;
    struct Entry;
    struct Job;
    struct Snapshot;
    using Defaults = std::vector<std::optional<double>>;  // the widgets' defaults, by index (none: not one number)
    uint64_t postAudition(Audition mode, long key, bool byStep);
    void watch();
    void compileLoop();
    void publish(const std::string& text);
    // an IR document: false + error when refused; `updated`: a values-only update (else a new instance)
    bool publishModel(const std::string& body, const std::shared_ptr<Entry>& entry, bool& updated, std::string& error);
    // the rest under opMutex (watcher thread)
    bool update(const LiftedCode& lifted, const std::shared_ptr<Entry>& entry);
    bool compile(const std::string& body, const LiftedCode& lifted, const std::shared_ptr<Entry>& entry, std::string& error);
    // a new instance becomes the newest model: channel checks, the history entry, the control side's copies
    bool adopt(std::unique_ptr<Instance> next, const std::shared_ptr<Entry>& entry, std::string& error);
    std::unique_ptr<Instance> instantiate(const std::shared_ptr<Structure>& s, bool llvm, const std::vector<double>& values,
                                          const Defaults& defaults, std::string& error);
    std::unique_ptr<Instance> instantiateModel(const std::shared_ptr<Entry>& entry, std::string& error);  // an IR document's
    void bind(Instance* inst);  // parameter slots -> the instance's zones
    void handValues(Instance* inst, std::unique_ptr<Snapshot> snapshot);  // to the audio thread, newest wins
    void releaseSnapshots(Instance* inst);  // free what the audio thread has left
    bool takeValues(Instance* inst);        // audio thread (or prepare): the newest snapshot, if any
    bool parameterSet(const std::string& address);  // has a value been set at this address
    void post(Instance* next);
    void bury(Instance* dead);  // to the graveyard: freed by the watcher when libfaust is not busy compiling
    void addEntry(const std::shared_ptr<Entry>& entry);
    void applyAudition();
    void collectCompiled();
    void promoteIfReady();
    void queueLlvm(const std::shared_ptr<Structure>& s);
    void collectGarbage();
    void applySlots(Instance* inst);
    void computeInstance(Instance* inst, int n, float** in, float** out);
    std::string tierName() const;
    void publishState(EngineStatus next);  // status file, then the control side's copies

    std::string path;
    int sampleRate, maxBlock;
    EngineOptions options;
    std::atomic<int> channelsIn{0}, channelsOut{0};
    std::atomic<double> tail{10.0};

    // audio side
    std::atomic<Instance*> current{nullptr}, pending{nullptr}, retired{nullptr};
    Instance* fading = nullptr;  // audio thread only
    int fadePos = 0;
    std::atomic<long long> activationMicros{0};
    std::atomic<long> activations{0};
    std::vector<std::vector<float>> scratchOld;
    std::vector<float*> scratchOldPtr, inPtr, outPtr;
    std::unique_ptr<Instance> bypass;  // plays the dry input; never freed before the engine

    struct Slot {
        std::atomic<float> value{0};
        std::atomic<bool> set{false};
    };
    Slot slots[kMaxSlots];

    // audition requests: [sequence:16][mode:2][byStep:1][key:45]
    std::atomic<uint64_t> auditionWord{0};
    std::atomic<uint64_t> auditionDone{0};    // the word the watcher applied last
    std::atomic<bool> auditionFound{true};    // did it find the entry
    std::atomic<long> promoteWanted{0}, promoteDone{0};

    // watcher side (watcher thread only, or under opMutex)
    std::mutex opMutex;
    std::deque<std::shared_ptr<Entry>> entries;
    long nextId = 1;
    Instance* posted = nullptr;     // the instance handed to the audio thread last (or the bypass one)
    Audition mode = Audition::Live;
    long pinnedId = 0;
    uint64_t appliedWord = 0, auditionReady = 0;  // auditionReady, promoteReady: applied, not yet acknowledged
    long promoteReady = 0;
    std::string runningCode;
    std::vector<std::shared_ptr<void>> graveyard;

    // control side
    std::mutex controlMutex;
    std::map<std::string, int> slotOf;                // address -> slot
    std::vector<std::string> newestAddresses;
    std::map<std::string, float> newestDefaults;
    std::vector<HistoryEntry> historyCopy;
    EngineStatus state;

    // compiler thread (Tiered)
    std::mutex jobMutex;
    std::condition_variable jobReady;
    std::unique_ptr<Job> job;                          // newest wins
    std::vector<std::unique_ptr<Job>> done;

    std::atomic<bool> stopping{false};
    std::thread watcher, compiler;
};

}  // namespace adac
