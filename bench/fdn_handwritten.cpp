// Hand-written FDN, no FAUST: the practical limit the compiled code is measured against.
//
// Same structure and arithmetic as the benchmarked FLAMO model, written the way one would by
// hand: the line count N and the matrix form are template parameters (loops unrolled and
// vectorised by the compiler), parameters are struct-of-arrays, every line is a power-of-two
// circular buffer advanced by one shared write index. Per sample:
//   s_i = line_i[w - d_i]                       (N delay-line reads)
//   y   = dry x + sum_i c_i s_i                 (output gains, direct path)
//   v   = M s                                   (feedback matrix, in the same form adac emits:
//                                                dense   -> N^2 products, per-line gains folded in
//                                                householder -> v = g o (s - 2 u (u.s))
//                                                hadamard    -> fast Walsh-Hadamard, then one
//                                                               factor per line (scale x gain))
//   line_i[w] = svf_i(v_i) + b_i x              (per-line TPT state-variable section, as adac_svf)
// Parameters come from a text file written by bench/run.py from the model's IR.
//
//   fdn_handwritten CONFIG SECONDS FS   -> "ns-per-sample checksum" (checksum as the FAUST harness)
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

enum Form { DENSE = 0, HOUSEHOLDER = 1, HADAMARD = 2 };

template <int N, int FORM>
struct Fdn {
    float b[N], c[N], g[N], u[N], dry = 0;
    float A[N * N];  // column-major: A[j * N + i] = M[i][j] (axpy per column: vectorises without reassociation)
    float a1[N], a2[N], gs[N], c0[N], c1[N], c2[N], ic1[N] = {}, ic2[N] = {};
    int delay[N], mask[N];
    std::vector<float> line[N];
    unsigned w = 0;

    void read(std::ifstream& in) {
        for (auto& d : delay) in >> d;
        for (auto& v : b) in >> v;
        for (auto& v : c) in >> v;
        in >> dry;
        for (auto& v : g) in >> v;
        if (FORM == DENSE)
            for (int i = 0; i < N; ++i)
                for (int j = 0; j < N; ++j) in >> A[j * N + i];
        if (FORM == HOUSEHOLDER)
            for (auto& v : u) in >> v;
        for (int i = 0; i < N; ++i) in >> a1[i] >> a2[i] >> gs[i] >> c0[i] >> c1[i] >> c2[i];
        for (int i = 0; i < N; ++i) {
            int size = 1;
            while (size <= delay[i]) size <<= 1;
            line[i].assign(size, 0.0f);
            mask[i] = size - 1;
        }
    }

    void process(const float* x, float* y, int count) {
        float s[N], v[N];
        for (int k = 0; k < count; ++k) {
            float out = dry * x[k];
            for (int i = 0; i < N; ++i) s[i] = line[i][(w - delay[i]) & mask[i]];
            for (int i = 0; i < N; ++i) out += c[i] * s[i];
            y[k] = out;
            if (FORM == DENSE) {
                for (int i = 0; i < N; ++i) v[i] = A[i] * s[0];
                for (int j = 1; j < N; ++j)
                    for (int i = 0; i < N; ++i) v[i] += A[j * N + i] * s[j];
            } else if (FORM == HOUSEHOLDER) {
                float dot = 0;
                for (int j = 0; j < N; ++j) dot += u[j] * s[j];
                for (int i = 0; i < N; ++i) v[i] = g[i] * (s[i] - 2 * u[i] * dot);
            } else {
                for (int i = 0; i < N; ++i) v[i] = s[i];
                for (int h = 1; h < N; h <<= 1)
                    for (int i = 0; i < N; i += 2 * h)
                        for (int j = i; j < i + h; ++j) {
                            const float p = v[j], q = v[j + h];
                            v[j] = p + q;
                            v[j + h] = p - q;
                        }
                for (int i = 0; i < N; ++i) v[i] *= g[i];  // 1/sqrt(N) x per-line gain
            }
            for (int i = 0; i < N; ++i) {  // SVF, as adac_svf: y = c0 v0 + c1 v1 + c2 v2
                const float v0 = v[i], v3 = v0 - ic2[i];
                const float v1 = a1[i] * ic1[i] + a2[i] * v3, v2 = ic2[i] + gs[i] * v1;
                ic1[i] = 2 * v1 - ic1[i];
                ic2[i] = 2 * v2 - ic2[i];
                v[i] = c0[i] * v0 + c1[i] * v1 + c2[i] * v2;
            }
            for (int i = 0; i < N; ++i) line[i][w & mask[i]] = v[i] + b[i] * x[k];
            ++w;
        }
    }
};

template <class F>
__attribute__((noinline)) void adac_run_block(F* fdn, const float* x, float* y, int count) {
    fdn->process(x, y, count);
}

template <int N, int FORM>
int run(std::ifstream& in, double seconds, int fs) {
    auto* fdn = new Fdn<N, FORM>();
    fdn->read(in);
    const long total = (long) (seconds * fs);
    const int block = 256;
    std::vector<float> x(block), y(block);
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> noise(-1, 1);
    double elapsed = 0, checksum = 0;
    for (long done = 0; done < total; done += block) {
        for (auto& e : x) e = noise(rng);
        const auto t0 = std::chrono::steady_clock::now();
        adac_run_block(fdn, x.data(), y.data(), block);
        elapsed += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        for (float e : y) checksum += e;
    }
    std::printf("%.4f %.9g\n", elapsed * 1e9 / total, checksum);
    delete fdn;
    return 0;
}

template <int FORM>
int dispatch(int n, std::ifstream& in, double seconds, int fs) {
    switch (n) {
        case 4: return run<4, FORM>(in, seconds, fs);
        case 8: return run<8, FORM>(in, seconds, fs);
        case 16: return run<16, FORM>(in, seconds, fs);
        case 32: return run<32, FORM>(in, seconds, fs);
        case 64: return run<64, FORM>(in, seconds, fs);
        case 128: return run<128, FORM>(in, seconds, fs);
    }
    std::fprintf(stderr, "fdn_handwritten: N = %d not instantiated\n", n);
    return 2;
}

int main(int argc, char** argv) {
    if (argc < 4) { std::fprintf(stderr, "usage: fdn_handwritten CONFIG SECONDS FS\n"); return 2; }
    std::ifstream in(argv[1]);
    int n;
    std::string kind;
    in >> n >> kind;
    const double seconds = std::atof(argv[2]);
    const int fs = std::atoi(argv[3]);
    if (kind == "dense") return dispatch<DENSE>(n, in, seconds, fs);
    if (kind == "householder") return dispatch<HOUSEHOLDER>(n, in, seconds, fs);
    if (kind == "hadamard") return dispatch<HADAMARD>(n, in, seconds, fs);
    std::fprintf(stderr, "fdn_handwritten: unknown form %s\n", kind.c_str());
    return 2;
}
