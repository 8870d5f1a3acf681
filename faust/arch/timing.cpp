/*
 * adac timing architecture (adac.backends.native.timing): one realisation of a model, the class
 * AdacTimedDsp (`faust -a timing.cpp -cn AdacTimedDsp`, or adac's native kernel with the same architecture),
 * timed on blocks of noise. The manifest's `backend: auto` compiles it once per realisation, with the
 * compiler and optimisation flags of the plugin, and runs the two binaries in turns.
 *
 *     timing SAMPLE_RATE BLOCK BLOCKS
 *
 * prints one line "<inputs> <outputs> <nanoseconds>": the wall-clock time of BLOCKS calls of
 * compute(BLOCK, ...), after as many calls untimed (caches, branch predictors and the delay lines warm).
 * The input is uniform noise in [-0.5, 0.5) on every input, the same for every realisation (fixed seed).
 */
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "faust/gui/meta.h"
#include "faust/gui/UI.h"
#include "faust/dsp/dsp.h"

<<includeIntrinsic>>

<<includeclass>>

namespace {

constexpr int kNoiseBlocks = 16;  // distinct noise blocks, taken in turn

long parse(const char* text, const char* what)
{
    char* end = nullptr;
    long value = std::strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || value < 1 || value > 100000000) {
        std::fprintf(stderr, "timing: %s must be a positive integer, not '%s'\n", what, text);
        std::exit(2);
    }
    return value;
}

}  // namespace

int main(int argc, char* argv[])
{
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s SAMPLE_RATE BLOCK BLOCKS\n", argv[0]);
        return 2;
    }
    const int rate = static_cast<int>(parse(argv[1], "SAMPLE_RATE"));
    const int block = static_cast<int>(parse(argv[2], "BLOCK"));
    const long blocks = parse(argv[3], "BLOCKS");

    auto processor = std::make_unique<AdacTimedDsp>();
    processor->init(rate);
    const int inputs = processor->getNumInputs();
    const int outputs = processor->getNumOutputs();

    std::mt19937 generator(20240601u);
    std::uniform_real_distribution<float> noise(-0.5f, 0.5f);
    // kNoiseBlocks blocks per input: noise[(b * inputs + i) * block + n]
    std::vector<FAUSTFLOAT> input(static_cast<size_t>(kNoiseBlocks) * std::max(inputs, 1) * block);
    for (auto& sample : input) {
        sample = static_cast<FAUSTFLOAT>(noise(generator));
    }
    std::vector<FAUSTFLOAT> output(static_cast<size_t>(std::max(outputs, 1)) * block);
    std::vector<FAUSTFLOAT*> in(std::max(inputs, 1)), out(std::max(outputs, 1));
    for (int o = 0; o < outputs; ++o) {
        out[o] = output.data() + static_cast<size_t>(o) * block;
    }
    auto run = [&](long count) {
        for (long b = 0; b < count; ++b) {
            FAUSTFLOAT* base = input.data() + static_cast<size_t>(b % kNoiseBlocks) * std::max(inputs, 1) * block;
            for (int i = 0; i < inputs; ++i) {
                in[i] = base + static_cast<size_t>(i) * block;
            }
            processor->compute(block, in.data(), out.data());
        }
    };

    run(blocks);  // warm-up
    const auto start = std::chrono::steady_clock::now();
    run(blocks);
    const auto stop = std::chrono::steady_clock::now();
    double sink = 0.0;  // the output is read: the compiler cannot drop the work
    for (FAUSTFLOAT sample : output) {
        sink += std::fabs(static_cast<double>(sample));
    }
    const long long nanoseconds = std::chrono::duration_cast<std::chrono::nanoseconds>(stop - start).count();
    if (!std::isfinite(sink)) {  // a realisation that blew up is no realisation to choose
        std::fprintf(stderr, "timing: the output is not finite\n");
        return 3;
    }
    std::printf("%d %d %lld\n", inputs, outputs, nanoseconds);
    return 0;
}
