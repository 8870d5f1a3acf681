// adac-hotreload-render: a command-line host around HotReloadEngine, for tests and benchmarks.
//
//   adac-hotreload-render PATH FS [--backend llvm|interpreter] [--crossfade N]
//
// Commands on standard input, one per line; each answers one line on standard output:
//   wait N MS        wait until N reloads have compiled      -> "ok" | "timeout"
//   run N            process N samples of silence            -> "ok"
//   impulse N        process an impulse on every input in turn (N samples each, silence between)
//                    and print the outputs                   -> "ir <n_in> <n_out> v v v ..."
//   set ADDR VALUE   set a parameter (kept across reloads)   -> "ok"
//   get ADDR         -> "value V" | "none"
//   status           -> "status reloads activations failures compile_ms backend | last error"
//   realtime MS      process blocks at real-time pace for MS milliseconds -> "ok"
//   activation       -> "activation <steady-clock microseconds of the newest DSP's first block>"
//   quit
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "HotReloadEngine.h"

int main(int argc, char** argv)
{
    if (argc < 3) {
        std::fprintf(stderr, "usage: adac-hotreload-render PATH FS [--backend llvm|interpreter] [--crossfade N]\n");
        return 2;
    }
    adac::Backend backend = adac::Backend::LLVM;
    int crossfade = 480;
    for (int a = 3; a < argc; ++a) {
        std::string arg = argv[a];
        if (arg == "--backend" && a + 1 < argc) backend = std::string(argv[++a]) == "interpreter" ? adac::Backend::Interpreter : adac::Backend::LLVM;
        else if (arg == "--crossfade" && a + 1 < argc) crossfade = std::atoi(argv[++a]);
    }
    const int fs = std::atoi(argv[2]);
    const int block = 256;
    adac::HotReloadEngine engine(argv[1], fs, block, backend, crossfade);

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
            std::cout << "status " << s.reloads << " " << s.activations << " " << s.failures << " " << s.last_compile_ms << " "
                      << s.backend << " | " << s.last_error.substr(0, s.last_error.find('\n')) << std::endl;
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
