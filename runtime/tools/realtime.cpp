// The runtime's audio path under the real-time check (hosts/rtcheck): `adac-runtime-realtime A.json B.json`.
// A and B are documents of the same structure (Plan::signature) with other numbers. Everything that allocates
// (load, prepare) happens first; then every call the audio thread makes is inside adac::RtScope: blocks of odd
// and changing sizes, the controls moved on every block, the values swapped between A's and B's every few
// blocks, in float and in double. Prints {"blocks", "finite", "peak_before", "peak_after"} as JSON.
#include <cmath>
#include <cstdio>
#include <vector>

#include "adac/runtime/processor.h"
#include "rtcheck.h"

using namespace adac::runtime;

namespace {

struct Result {
    long blocks = 0;
    bool finite = true;
    double peakBefore = 0, peakAfter = 0;
};

template <class R> void play(const Model& a, const Model& b, Result& result)
{
    Processor<R> p(a);
    const int maxBlock = 512, inputs = a.plan->inputs, outputs = a.plan->outputs;
    p.prepare(48000, maxBlock);
    std::vector<std::vector<R>> in(static_cast<size_t>(inputs), std::vector<R>(static_cast<size_t>(maxBlock)));
    std::vector<std::vector<R>> out(static_cast<size_t>(outputs), std::vector<R>(static_cast<size_t>(maxBlock)));
    std::vector<const R*> inPtr;
    std::vector<R*> outPtr;
    for (auto& c : in) inPtr.push_back(c.data());
    for (auto& c : out) outPtr.push_back(c.data());
    const int sizes[] = {1, 7, 64, 512, 333, 128, 2, 511, 256, 97};
    unsigned noise = 1;
    const long total = 48000 * 2;
    long done = 0, block = 0;
    while (done < total) {
        const int n = sizes[block % 10];
        for (auto& c : in)
            for (int t = 0; t < n; ++t) {
                noise = noise * 1664525u + 1013904223u;
                c[size_t(t)] = R(0.1) * (R(noise >> 8) / R(1 << 24) * 2 - 1);
            }
        {
            adac::RtScope scope;
            if (block % 7 == 3) p.setValues(block % 14 == 3 ? b.values.get() : a.values.get());
            const double phase = double(block % 50) / 50;
            for (int c = 0; c < 3; ++c) {
                const Controls& k = a.values->controls;
                const ControlSpec& s = c == 0 ? k.rt60 : c == 1 ? k.dryWet : k.preDelay;
                p.setControl(c, s.min + (s.max - s.min) * phase);
            }
            p.process(n, inPtr.data(), outPtr.data());
        }
        for (auto& c : out)
            for (int t = 0; t < n; ++t) {
                const double y = std::abs(double(c[size_t(t)]));
                result.finite = result.finite && std::isfinite(y);
                double& peak = done < total / 2 ? result.peakBefore : result.peakAfter;
                peak = std::max(peak, y);
            }
        done += n;
        ++block;
    }
    result.blocks += block;
}

}  // namespace

int main(int argc, char** argv)
{
    if (argc != 3) {
        std::fprintf(stderr, "usage: adac-runtime-realtime A.json B.json (two documents of one structure)\n");
        return 2;
    }
    try {
        const Model a = loadFile(argv[1]), b = loadFile(argv[2]);
        if (a.plan->signature != b.plan->signature) {
            std::fprintf(stderr, "adac: error: %s and %s differ in structure\n", argv[1], argv[2]);
            return 2;
        }
        Result result;
        play<float>(a, b, result);
        play<double>(a, b, result);
        std::printf("{\"blocks\": %ld, \"finite\": %s, \"peak_before\": %.9g, \"peak_after\": %.9g}\n", result.blocks,
                    result.finite ? "true" : "false", result.peakBefore, result.peakAfter);
    } catch (const Error& e) {
        std::fprintf(stderr, "adac: error: %s\n", e.what());
        return 2;
    }
    return 0;
}
