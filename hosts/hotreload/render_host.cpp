// adac-hotreload-render: a command-line host around HotReloadEngine, for tests and benchmarks.
//
//   adac-hotreload-render --lift FILE   (prints FILE's lifted code; the skeleton goes to stderr)
//   adac-hotreload-render PATH FS [--backend llvm|interpreter] [--crossfade N] [--llvm-opt L]
//                                 [--no-lift] [--status FILE] [--block N] [--poll-ms MS]
//
// It never processes audio on its own: blocks are processed only when a command asks, so a test
// decides exactly which samples it records (reloads still happen in the background).
// Commands on standard input, one per line; each answers one line on standard output:
//   wait N MS        wait until N reloads (compiles + constant updates) are done -> "ok" | "timeout"
//   waitfail N MS    wait until N publishes have failed to compile              -> "ok" | "timeout"
//   run N            process N samples of silence            -> "ok"
//   impulse N        process an impulse on every input in turn (N samples each, silence between)
//                    and print the outputs                   -> "ir <n_in> <n_out> v v v ..."
//   set ADDR VALUE   set a parameter (kept across reloads)   -> "ok"
//   get ADDR         -> "value V" | "none"
//   addresses        -> "addresses A B ..." (the newest DSP's parameters)
//   status           -> "status reloads=R compiles=C updates=U activations=A failures=F ms=T backend=B lifted=0|1 | last error"
//   realtime MS      process blocks at real-time pace for MS milliseconds -> "ok"
//   activation       -> "activation <steady-clock microseconds of the newest DSP's first block>"
//   quit
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ConstantLifter.h"
#include "HotReloadEngine.h"

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
    if (argc < 3) {
        std::fprintf(stderr, "usage: adac-hotreload-render PATH FS [--backend llvm|interpreter] [--crossfade N] [--llvm-opt L] "
                             "[--no-lift] [--status FILE] [--block N] [--poll-ms MS]\n");
        return 2;
    }
    adac::EngineOptions options;
    int block = 256;
    for (int a = 3; a < argc; ++a) {
        const std::string arg = argv[a];
        const bool value = a + 1 < argc;
        if (arg == "--backend" && value) {
            const std::string name = argv[++a];
            if (name != "llvm" && name != "interpreter") {
                std::fprintf(stderr, "adac-hotreload-render: unknown backend %s\n", name.c_str());
                return 2;
            }
            options.backend = name == "interpreter" ? adac::Backend::Interpreter : adac::Backend::LLVM;
        } else if (arg == "--crossfade" && value) options.crossfadeSamples = std::atoi(argv[++a]);
        else if (arg == "--llvm-opt" && value) options.llvmOptLevel = std::atoi(argv[++a]);
        else if (arg == "--status" && value) options.statusPath = argv[++a];
        else if (arg == "--block" && value) block = std::max(1, std::atoi(argv[++a]));
        else if (arg == "--poll-ms" && value) options.pollMs = std::max(1, std::atoi(argv[++a]));
        else if (arg == "--no-lift") options.liftConstants = false;
        else {
            std::fprintf(stderr, "adac-hotreload-render: unknown argument %s\n", arg.c_str());
            return 2;
        }
    }
    const int fs = std::atoi(argv[2]);
    adac::HotReloadEngine engine(argv[1], fs, block, options);

    auto process = [&](long n, int impulseChannel, std::vector<std::vector<float>>* record) {
        const int nin = std::max(1, engine.numInputs()), nout = std::max(1, engine.numOutputs());
        std::vector<std::vector<float>> in(nin, std::vector<float>(block)), out(nout, std::vector<float>(block));
        std::vector<float*> ip(nin), op(nout);
        for (int i = 0; i < nin; ++i) ip[i] = in[i].data();
        for (int o = 0; o < nout; ++o) op[o] = out[o].data();
        for (long done = 0; done < n; done += block) {
            const int count = (int) std::min<long>(block, n - done);
            for (int i = 0; i < nin; ++i)
                for (int k = 0; k < count; ++k) in[i][k] = (i == impulseChannel && done + k == 0) ? 1.0f : 0.0f;
            engine.process(count, ip.data(), op.data());
            if (record)
                for (int o = 0; o < nout; ++o) (*record)[o].insert((*record)[o].end(), out[o].begin(), out[o].begin() + count);
        }
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
        } else if (word == "addresses") {
            std::cout << "addresses";
            for (auto& a : engine.addresses()) std::cout << " " << a;
            std::cout << std::endl;
        } else if (word == "run") {
            long n; cmd >> n;
            process(n, -1, nullptr);
            std::cout << "ok" << std::endl;
        } else if (word == "impulse") {
            long n; cmd >> n;
            std::ostringstream reply;
            reply.precision(9);
            reply << "ir " << engine.numInputs() << " " << engine.numOutputs();
            for (int j = 0; j < std::max(1, engine.numInputs()); ++j) {
                std::vector<std::vector<float>> record(std::max(1, engine.numOutputs()));
                process(n, j, &record);
                for (long k = 0; k < n; ++k)
                    for (auto& ch : record) reply << " " << ch[k];
                process(4 * n, -1, nullptr);  // let the tail die out before the next input's impulse
            }
            std::cout << reply.str() << std::endl;
        } else if (word == "set") {
            std::string address; float value; cmd >> address >> value;
            engine.setParameter(address, value);
            std::cout << "ok" << std::endl;
        } else if (word == "get") {
            std::string address; cmd >> address;
            float value;
            if (engine.getParameter(address, value)) std::cout << "value " << value << std::endl;
            else std::cout << "none" << std::endl;
        } else if (word == "status") {
            auto s = engine.status();
            std::cout << "status reloads=" << s.reloads << " compiles=" << s.compiles << " updates=" << s.updates
                      << " activations=" << s.activations << " failures=" << s.failures << " ms=" << s.last_compile_ms
                      << " backend=" << s.backend << " lifted=" << (s.lifted ? 1 : 0) << " | "
                      << s.last_error.substr(0, s.last_error.find('\n')) << std::endl;
        } else if (word == "realtime") {
            int ms; cmd >> ms;
            const auto period = std::chrono::microseconds((long long) block * 1000000 / fs);
            auto next = std::chrono::steady_clock::now();
            const auto end = next + std::chrono::milliseconds(ms);
            while (std::chrono::steady_clock::now() < end) {
                process(block, -1, nullptr);
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
