/*
 * adac render driver: runs a FAUST-generated DSP class offline (see render.cpp for the class part).
 *
 *   render <fs> <n_samples> [--impulses | --input FILE] [--set /addr=value ...] [--set-after N /addr=value ...]
 *          [--model FILE]
 *
 * --impulses (default): for each input channel j, a fresh instance gets a unit
 * impulse on channel j (zeros elsewhere); the output is written to stdout as
 * little-endian float64: a header (n_inputs, n_outputs), then [input j][sample n][output m].
 * A DSP with no inputs is rendered once (layout [1][n][m]).
 * --input FILE: raw float64 frames [n][inputs] are processed by one instance.
 * --set /addr=value sets a UI parameter (by its full FAUST address) before rendering.
 * --set-after N /addr=value sets it after N samples have been rendered.
 * --model FILE: the model a DSP that plays models reads (the runtime's driver, runtime/tools/render.cpp);
 * a FAUST class ignores it.
 */
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
#include <algorithm>

#include "faust/gui/MapUI.h"
#include "faust/gui/meta.h"
#include "faust/dsp/dsp.h"

// a new instance of the DSP; `model`: the --model argument (nullptr when none)
dsp* adac_create_dsp(const char* model);



struct Setting { long at; std::string address; double value; };

static std::vector<double> run(dsp& d, int fs, long n, const std::vector<double>* input, int impulse_channel,
                               const std::vector<Setting>& settings)
{
    d.init(fs);
    MapUI ui;
    d.buildUserInterface(&ui);
    const int nin = d.getNumInputs(), nout = d.getNumOutputs();
    std::vector<double> out((size_t)n * nout, 0.0);
    const long block = 256;
    std::vector<std::vector<FAUSTFLOAT>> ibuf(nin, std::vector<FAUSTFLOAT>(block)), obuf(nout, std::vector<FAUSTFLOAT>(block));
    std::vector<FAUSTFLOAT*> iptr(nin), optr(nout);
    for (int i = 0; i < nin; i++) iptr[i] = ibuf[i].data();
    for (int o = 0; o < nout; o++) optr[o] = obuf[o].data();
    for (long start = 0; start < n;) {
        long len = std::min(block, n - start);
        for (const Setting& s : settings) {
            if (s.at >= start && s.at < start + len) len = std::max(1L, s.at - start);
        }
        for (const Setting& s : settings) {
            if (s.at == start) {
                if (ui.getParamZone(s.address) == nullptr) {
                    std::fprintf(stderr, "render: no parameter %s\n", s.address.c_str());
                    std::exit(3);
                }
                ui.setParamValue(s.address, s.value);
            }
        }
        for (int i = 0; i < nin; i++) {
            for (long k = 0; k < len; k++) {
                long t = start + k;
                ibuf[i][k] = input ? (FAUSTFLOAT)(*input)[(size_t)t * nin + i]
                                   : (FAUSTFLOAT)((i == impulse_channel && t == 0) ? 1.0 : 0.0);
            }
        }
        d.compute((int)len, iptr.data(), optr.data());
        for (int o = 0; o < nout; o++)
            for (long k = 0; k < len; k++) out[(size_t)(start + k) * nout + o] = obuf[o][k];
        start += len;
    }
    return out;
}

int main(int argc, char** argv)
{
    if (argc < 3) { std::fprintf(stderr, "usage: render fs n_samples [...]\n"); return 2; }
    const int fs = std::atoi(argv[1]);
    const long n = std::atol(argv[2]);
    std::vector<Setting> settings;
    std::vector<double> input;
    bool from_file = false;
    const char* model = nullptr;
    for (int a = 3; a < argc; a++) {
        std::string arg = argv[a];
        long at = 0;
        if (arg == "--impulses") continue;
        if (arg == "--model" && a + 1 < argc) {
            model = argv[++a];
            continue;
        }
        if (arg == "--input" && a + 1 < argc) {
            FILE* f = std::fopen(argv[++a], "rb");
            if (!f) { std::fprintf(stderr, "render: cannot open %s\n", argv[a]); return 2; }
            double v;
            while (std::fread(&v, sizeof v, 1, f) == 1) input.push_back(v);
            std::fclose(f);
            from_file = true;
            continue;
        }
        if (arg == "--set-after" && a + 2 < argc) { at = std::atol(argv[++a]); arg = "--set"; }
        if (arg == "--set" && a + 1 < argc) {
            std::string kv = argv[++a];
            size_t eq = kv.rfind('=');
            if (eq == std::string::npos) { std::fprintf(stderr, "render: bad --set %s\n", kv.c_str()); return 2; }
            settings.push_back({at, kv.substr(0, eq), std::atof(kv.substr(eq + 1).c_str())});
            continue;
        }
        std::fprintf(stderr, "render: unknown argument %s\n", arg.c_str());
        return 2;
    }
    dsp* proto = adac_create_dsp(model);
    dsp& d = *proto;
    const int nin = d.getNumInputs();
    std::vector<double> all;
    if (from_file) {
        if (nin == 0 || input.size() != (size_t)n * nin) { std::fprintf(stderr, "render: input size mismatch\n"); return 2; }
        all = run(d, fs, n, &input, -1, settings);
    } else {
        for (int j = 0; j < std::max(1, nin); j++) {
            dsp* fresh = adac_create_dsp(model);
            std::vector<double> y = run(*fresh, fs, n, nullptr, j, settings);
            delete fresh;
            all.insert(all.end(), y.begin(), y.end());
        }
    }
    const double header[2] = {(double)nin, (double)d.getNumOutputs()};
    std::fwrite(header, sizeof(double), 2, stdout);
    std::fwrite(all.data(), sizeof(double), all.size(), stdout);
    delete proto;
    return 0;
}
