/*
 * adac benchmark architecture (FAUST -a): times the generated class's compute() over noise.
 *   bench SECONDS FS   -> "ns-per-sample checksum"
 * Same noise, block size (256) and checksum as bench/fdn_handwritten.cpp. compute() is called
 * from a non-inlined adac_run_block(), so `valgrind --tool=callgrind --toggle-collect=adac_run_block*`
 * counts the instructions of the DSP alone.
 */
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "faust/gui/meta.h"
#include "faust/gui/UI.h"
#include "faust/dsp/dsp.h"

<<includeIntrinsic>>

<<includeclass>>

__attribute__((noinline)) void adac_run_block(dsp* d, int count, FAUSTFLOAT** in, FAUSTFLOAT** out) {
    d->compute(count, in, out);
}

int main(int argc, char** argv) {
    if (argc < 3) { std::fprintf(stderr, "usage: bench SECONDS FS\n"); return 2; }
    dsp* d = new mydsp();
    const int fs = std::atoi(argv[2]);
    d->init(fs);
    const long total = (long) (std::atof(argv[1]) * fs);
    const int block = 256, nin = d->getNumInputs(), nout = d->getNumOutputs();
    std::vector<std::vector<FAUSTFLOAT>> in(nin, std::vector<FAUSTFLOAT>(block)), out(nout, std::vector<FAUSTFLOAT>(block));
    std::vector<FAUSTFLOAT*> ip(nin), op(nout);
    for (int i = 0; i < nin; ++i) ip[i] = in[i].data();
    for (int o = 0; o < nout; ++o) op[o] = out[o].data();
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> noise(-1, 1);
    double elapsed = 0, checksum = 0;
    for (long done = 0; done < total; done += block) {
        for (int k = 0; k < block; ++k) { const float e = noise(rng); for (auto& ch : in) ch[k] = e; }
        const auto t0 = std::chrono::steady_clock::now();
        adac_run_block(d, block, ip.data(), op.data());
        elapsed += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        for (auto& ch : out) for (auto e : ch) checksum += e;
    }
    std::printf("%.4f %.9g\n", elapsed * 1e9 / total, checksum);
    delete d;
    return 0;
}
