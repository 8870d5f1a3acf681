// adac-hotreload-render: a command-line host around HotReloadEngine, for tests and benchmarks. PATH holds an IR
// document (what adac.HotReload publishes: played by the runtime) or FAUST code (compiled with libfaust).
//
//   adac-hotreload-render --lift FILE   (prints FILE's lifted code; the skeleton goes to stderr)
//   adac-hotreload-render PATH FS [--backend llvm|interpreter|tiered] [--promote auto|manual] [--crossfade N]
//                                 [--llvm-opt L] [--no-lift] [--max-lifted N] [--status FILE] [--block N] [--poll-ms MS]
//
// --block N is the block size announced to the engine (its maxBlock, 256); the host hands the engine
// whatever a command asks for in one call (up to 65536 samples), so a call larger than announced is
// the engine's to split. --backend tiered: every compile plays libfaust's interpreter build first and
// swaps (crossfade) to the LLVM build when a background thread has it; --promote manual holds that
// swap until a `promote` command (tests decide which samples each tier plays).
//
// It never processes audio on its own: blocks are processed only when a command asks, so a test
// decides exactly which samples it records (reloads still happen in the background). Every call of
// engine.process is bracketed by adac::RtScope (hosts/rtcheck/rtcheck.h), and the host's own buffers
// are sized before it, so under the real-time checker only the engine's work is counted.
// Commands on standard input, one per line; each answers one line on standard output:
//   wait N MS        wait until N reloads (compiles + values updates) are done   -> "ok" | "timeout"
//   waitfail N MS    wait until N publishes have failed to compile              -> "ok" | "timeout"
//   waittier T MS    wait until the DSP handed to the audio thread last is of tier T
//                    (interpreter | llvm | runtime | bypass)                     -> "ok" | "timeout"
//   promote MS       tiered: wait until the LLVM build of what plays is ready and handed to the audio
//                    thread (with --promote manual, this is what lets it swap)  -> "ok" | "timeout"
//   input silence | input sine HZ [AMP] | input noise [AMP]
//                    the signal `run`, `record` and `realtime` feed every input from now on (default
//                    silence; a sine starts at phase 0 now; noise is a fixed pseudo-random sequence) -> "ok"
//   run N            process N samples of the input signal  -> "ok"
//   record N         the same, and print the outputs        -> "rec <n_out> v v v ..." (sample-major)
//   impulse N        process an impulse on every input in turn (N samples each, 4N of silence after
//                    each) and print the outputs            -> "ir <n_in> <n_out> v v v ..."
//   set ADDR VALUE   set a parameter (kept across reloads)  -> "ok" | "error too many parameters"
//   get ADDR         -> "value V" | "none"
//   addresses        -> "addresses A B ..." (the newest DSP's parameters)
//   status           -> "status reloads=R compiles=C updates=U activations=A failures=F ms=T backend=B
//                        tier=T audition=live|bypass|pin:K lifted=0|1 runtime=0|1 | last error"
//   history          -> "history <count> <id>:<step>:<loss>:<compile|update> ..." (oldest first, at most 32;
//                        '-' for a step or loss the publish's tag line did not give)
//   audition live | audition bypass | audition pin K
//                    play the newest model, the dry input, or history entry K (a fresh instance of its
//                    code and values), crossfaded         -> "ok" | "error ..."
//   rate FS          a sample-rate change (a host's prepareToPlay): every DSP re-initialised at FS -> "ok"
//   realtime MS      process --block blocks at real-time pace for MS milliseconds -> "ok"
//   activation       -> "activation <steady-clock microseconds of the newest DSP's first block>"
//   quit
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../rtcheck/rtcheck.h"
#include "ConstantLifter.h"
#include "HotReloadEngine.h"

namespace {

constexpr long kMaxCall = 65536;  // samples per engine.process call at most

// What feeds the inputs.
struct Signal {
    enum Kind { Silence, Sine, Noise } kind = Silence;
    double hz = 0, amp = 1;
    long position = 0;         // samples since the `input` command
    uint32_t noise = 22222;    // LCG state
    float next(int fs)
    {
        const long k = position++;
        if (kind == Sine) return float(amp * std::sin(2 * M_PI * hz * double(k) / fs));
        if (kind == Noise) {
            noise = noise * 1664525u + 1013904223u;
            return float(amp * (double(noise) / 2147483648.0 - 1.0));
        }
        return 0.0f;
    }
};

}  // namespace

int main(int argc, char** argv)
{
    if (argc == 3 && std::string(argv[1]) == "--lift") {  // print the lifted code of a file (debugging, tests)
        std::ifstream file(argv[2]);
        std::stringstream text;
        text << file.rdbuf();
        const adac::LiftedCode lifted = adac::liftConstants(text.str());
        std::cout << lifted.code;
        std::cerr << lifted.values.size() << " constants lifted\n" << lifted.skeleton << "\n";
        return 0;
    }
    const char* usage = "usage: adac-hotreload-render PATH FS [--backend llvm|interpreter|tiered] [--promote auto|manual] "
                        "[--crossfade N] [--llvm-opt L] [--no-lift] [--max-lifted N] [--status FILE] [--block N] [--poll-ms MS]\n";
    if (argc < 3) {
        std::fputs(usage, stderr);
        return 2;
    }
    adac::EngineOptions options;
    int block = 256;
    for (int a = 3; a < argc; ++a) {
        const std::string arg = argv[a];
        const bool value = a + 1 < argc;
        if (arg == "--backend" && value) {
            const std::string name = argv[++a];
            if (name == "llvm") options.backend = adac::Backend::LLVM;
            else if (name == "interpreter") options.backend = adac::Backend::Interpreter;
            else if (name == "tiered") options.backend = adac::Backend::Tiered;
            else {
                std::fprintf(stderr, "adac-hotreload-render: unknown backend %s\n", name.c_str());
                return 2;
            }
        } else if (arg == "--promote" && value) {
            const std::string how = argv[++a];
            if (how != "auto" && how != "manual") {
                std::fprintf(stderr, "adac-hotreload-render: --promote takes auto or manual, not %s\n", how.c_str());
                return 2;
            }
            options.autoPromote = how == "auto";
        } else if (arg == "--crossfade" && value) options.crossfadeSamples = std::atoi(argv[++a]);
        else if (arg == "--llvm-opt" && value) options.llvmOptLevel = std::atoi(argv[++a]);
        else if (arg == "--status" && value) options.statusPath = argv[++a];
        else if (arg == "--block" && value) block = std::max(1, std::atoi(argv[++a]));
        else if (arg == "--poll-ms" && value) options.pollMs = std::max(1, std::atoi(argv[++a]));
        else if (arg == "--no-lift") options.liftConstants = false;
        else if (arg == "--max-lifted" && value) options.maxLiftedConstants = size_t(std::max(0, std::atoi(argv[++a])));
        else {
            std::fprintf(stderr, "adac-hotreload-render: unknown argument %s\n%s", arg.c_str(), usage);
            return 2;
        }
    }
    int fs = std::atoi(argv[2]);
    if (fs <= 0) {
        std::fprintf(stderr, "adac-hotreload-render: FS must be a positive sample rate, not %s\n", argv[2]);
        return 2;
    }
    adac::HotReloadEngine engine(argv[1], fs, block, options);
    Signal signal;

    // The host's buffers: sized before a call, never inside the RtScope.
    std::vector<std::vector<float>> in, out;
    std::vector<float*> ip, op;
    auto size = [&](long samples, int nin, int nout) {
        in.resize(std::max(1, nin));
        out.resize(std::max(1, nout));
        for (auto& ch : in) ch.resize(std::max<size_t>(ch.size(), samples));
        for (auto& ch : out) ch.resize(std::max<size_t>(ch.size(), samples));
        ip.resize(in.size());
        op.resize(out.size());
        for (size_t c = 0; c < in.size(); ++c) ip[c] = in[c].data();
        for (size_t c = 0; c < out.size(); ++c) op[c] = out[c].data();
    };
    enum class Feed { Signal, Silence, Impulse };
    // n samples in calls of up to `call` samples; the impulse (Feed::Impulse) on input impulseChannel at sample 0
    auto process = [&](long n, long call, Feed feed, int impulseChannel, std::vector<std::vector<float>>* record) {
        for (long done = 0; done < n; done += call) {
            const int count = (int) std::min(call, n - done);
            const int nin = engine.numInputs(), nout = engine.numOutputs();
            size(count, nin, nout);
            for (int k = 0; k < count; ++k) {
                const float x = feed == Feed::Signal ? signal.next(fs) : 0.0f;
                for (int i = 0; i < nin; ++i) in[i][k] = feed == Feed::Impulse ? (i == impulseChannel && done + k == 0 ? 1.0f : 0.0f) : x;
            }
            {
                adac::RtScope audio;
                engine.process(count, nin, ip.data(), nout, op.data());
            }
            if (record) {
                record->resize(std::max(1, nout));
                for (int o = 0; o < nout; ++o) (*record)[o].insert((*record)[o].end(), out[o].begin(), out[o].begin() + count);
            }
        }
    };
    auto samples = [](std::ostringstream& reply, const std::vector<std::vector<float>>& record, long n) {
        for (long k = 0; k < n; ++k)
            for (auto& ch : record) reply << " " << (k < (long) ch.size() ? ch[k] : 0.0f);
    };

    std::string line;
    while (std::getline(std::cin, line)) {
        std::istringstream cmd(line);
        std::string word;
        cmd >> word;
        if (word == "quit") break;
        if (word == "wait") {
            long n; int ms; cmd >> n >> ms;
            std::cout << (engine.waitForReloads(n, ms) ? "ok" : "timeout") << std::endl;
        } else if (word == "waitfail") {
            long n; int ms; cmd >> n >> ms;
            std::cout << (engine.waitForFailures(n, ms) ? "ok" : "timeout") << std::endl;
        } else if (word == "waittier") {
            std::string tier; int ms; cmd >> tier >> ms;
            std::cout << (engine.waitForTier(tier, ms) ? "ok" : "timeout") << std::endl;
        } else if (word == "promote") {
            int ms; cmd >> ms;
            std::cout << (engine.promote(ms) ? "ok" : "timeout") << std::endl;
        } else if (word == "addresses") {
            std::cout << "addresses";
            for (auto& a : engine.addresses()) std::cout << " " << a;
            std::cout << std::endl;
        } else if (word == "input") {
            std::string kind; cmd >> kind;
            Signal next;
            if (kind == "sine" && (cmd >> next.hz)) next.kind = Signal::Sine;
            else if (kind == "noise") next.kind = Signal::Noise;
            else if (kind != "silence") {
                std::cout << "error input takes silence, sine HZ [AMP] or noise [AMP]" << std::endl;
                continue;
            }
            double amp;
            if (cmd >> amp) next.amp = amp;
            signal = next;
            std::cout << "ok" << std::endl;
        } else if (word == "run" || word == "record") {
            long n = 0; cmd >> n;
            std::vector<std::vector<float>> record;
            process(n, kMaxCall, Feed::Signal, -1, word == "record" ? &record : nullptr);
            if (word == "run") {
                std::cout << "ok" << std::endl;
                continue;
            }
            std::ostringstream reply;
            reply.precision(9);
            reply << "rec " << engine.numOutputs();
            samples(reply, record, n);
            std::cout << reply.str() << std::endl;
        } else if (word == "impulse") {
            long n = 0; cmd >> n;
            std::ostringstream reply;
            reply.precision(9);
            reply << "ir " << engine.numInputs() << " " << engine.numOutputs();
            for (int j = 0; j < std::max(1, engine.numInputs()); ++j) {
                std::vector<std::vector<float>> record;
                process(n, kMaxCall, Feed::Impulse, j, &record);
                samples(reply, record, n);
                process(4 * n, kMaxCall, Feed::Silence, -1, nullptr);  // let the tail die out before the next input's impulse
            }
            std::cout << reply.str() << std::endl;
        } else if (word == "set") {
            std::string address; float value; cmd >> address >> value;
            std::cout << (engine.setParameter(address, value) ? "ok" : "error too many parameters") << std::endl;
        } else if (word == "get") {
            std::string address; cmd >> address;
            float value;
            if (engine.getParameter(address, value)) std::cout << "value " << value << std::endl;
            else std::cout << "none" << std::endl;
        } else if (word == "status") {
            auto s = engine.status();
            std::cout << "status reloads=" << s.reloads << " compiles=" << s.compiles << " updates=" << s.updates
                      << " activations=" << s.activations << " failures=" << s.failures << " ms=" << s.last_compile_ms
                      << " backend=" << s.backend << " tier=" << s.tier << " audition=" << s.audition
                      << " lifted=" << (s.lifted ? 1 : 0) << " runtime=" << (s.runtime ? 1 : 0) << " | " << s.last_error.substr(0, s.last_error.find('\n')) << std::endl;
        } else if (word == "history") {
            const auto entries = engine.history();
            std::ostringstream reply;
            reply.precision(9);
            reply << "history " << entries.size();
            for (auto& e : entries) {
                reply << " " << e.id << ":";
                if (e.hasStep) reply << e.step; else reply << "-";
                reply << ":";
                if (e.hasLoss) reply << e.loss; else reply << "-";
                reply << ":" << (e.compiled ? "compile" : "update");
            }
            std::cout << reply.str() << std::endl;
        } else if (word == "audition") {
            std::string what; cmd >> what;
            long id = 0;
            adac::Audition mode;
            if (what == "live") mode = adac::Audition::Live;
            else if (what == "bypass") mode = adac::Audition::Bypass;
            else if (what == "pin" && (cmd >> id)) mode = adac::Audition::Pinned;
            else {
                std::cout << "error audition takes live, bypass or pin K" << std::endl;
                continue;
            }
            std::string error;
            if (engine.audition(mode, id, 20000, error)) std::cout << "ok" << std::endl;
            else std::cout << "error " << error << std::endl;
        } else if (word == "rate") {
            int rate = 0; cmd >> rate;
            if (rate <= 0) {
                std::cout << "error rate takes a positive sample rate" << std::endl;
                continue;
            }
            fs = rate;
            engine.prepare(fs, block, options.crossfadeSamples);
            std::cout << "ok" << std::endl;
        } else if (word == "realtime") {
            int ms = 0; cmd >> ms;
            const auto period = std::chrono::microseconds((long long) block * 1000000 / fs);
            auto next = std::chrono::steady_clock::now();
            const auto end = next + std::chrono::milliseconds(ms);
            while (std::chrono::steady_clock::now() < end) {
                process(block, block, Feed::Signal, -1, nullptr);
                next += period;
                std::this_thread::sleep_until(next);
            }
            std::cout << "ok" << std::endl;
        } else if (word == "activation") {
            std::cout << "activation " << engine.lastActivationMicros() << std::endl;
        } else {
            std::cout << "error unknown command " << word << std::endl;
        }
    }
    return 0;
}
