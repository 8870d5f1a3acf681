/*
 * adac benchmark architecture: times compute() over noise.
 *   bench SECONDS FS   -> prints ns per sample (compute() only) and a checksum
 */
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>
#include <algorithm>

#include "faust/gui/meta.h"
#include "faust/gui/UI.h"
#include "faust/dsp/dsp.h"

<<includeIntrinsic>>

<<includeclass>>

int main(int argc, char** argv) {
    if (argc < 3) { std::fprintf(stderr, "usage: bench SECONDS FS\n"); return 2; }
    mydsp d;
    const int fs = std::atoi(argv[2]);
    d.init(fs);
    const long total = (long) (std::atof(argv[1]) * fs);
    const int block = 256, nin = d.getNumInputs(), nout = d.getNumOutputs();
    std::vector<std::vector<FAUSTFLOAT>> in(nin, std::vector<FAUSTFLOAT>(block)), out(nout, std::vector<FAUSTFLOAT>(block));
    std::vector<FAUSTFLOAT*> ip(nin), op(nout);
    for (int i = 0; i < nin; ++i) ip[i] = in[i].data();
    for (int o = 0; o < nout; ++o) op[o] = out[o].data();
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> noise(-1, 1);
    double elapsed = 0, checksum = 0;
    for (long done = 0; done < total; done += block) {
        for (auto& ch : in) for (auto& e : ch) e = noise(rng);
        const auto t0 = std::chrono::steady_clock::now();
        d.compute(block, ip.data(), op.data());
        elapsed += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        for (auto& ch : out) for (auto e : ch) checksum += e;
    }
    std::printf("%.4f %g\n", elapsed * 1e9 / total, checksum);
    return 0;
}
