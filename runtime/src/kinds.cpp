// One row per IR kind: how the loader reads it (realised as the FAUST backend realises it: Lagrange fractional
// delays, second-order sections as TPT state-variable filters where their poles allow, else direct form I) and
// its processor. The rows' names are the schema's node kinds (tests/test_runtime.py compares them).
#include <algorithm>
#include <cmath>
#include <map>

#include <Eigen/Core>

#include "kinds.h"

namespace adac::runtime::detail {

namespace {

// ---------------------------------------------------------------------------------------------------------
// realised maths (the same formulas as adac.ir.fractional.lagrange and adac.ir.sections.svf_parameters)

// integer pre-delay and order + 1 Lagrange taps; the interpolator's own delay kept in [(P-1)/2, (P+1)/2]
void lagrange(double delay, int order, double& base, std::vector<double>& taps)
{
    const double centre = (order - 1) / 2.0;
    base = std::max(0.0, std::floor(delay - centre));
    const double frac = delay - base;
    taps.assign(size_t(order) + 1, 1.0);
    for (int i = 0; i <= order; ++i) {
        double p = 1.0;
        for (int k = 0; k <= order; ++k)
            if (k != i) p *= (frac - k) / double(i - k);
        taps[size_t(i)] = p;
    }
}

enum SectionForm { kZero = 0, kFir = 1, kSvf = 2, kDf1 = 3 };

// [form, p0..p5] of a normalised section [b0, b1, b2, 1, a1, a2], as adac.backends.faust.emit realises it
void section(const double* s, double* out)
{
    const double b0 = s[0], b1 = s[1], b2 = s[2], a1 = s[4], a2 = s[5];
    std::fill(out, out + 7, 0.0);
    if (b0 == 0 && b1 == 0 && b2 == 0) return;  // kZero: the path is cut
    if (a1 == 0 && a2 == 0) {
        out[0] = kFir;
        out[1] = b0, out[2] = b1, out[3] = b2;
        return;
    }
    if (std::abs(a2) < 1 && std::abs(a1) < 1 + a2) {
        const double g = std::pow((1 + a1 + a2) / (1 - a1 + a2), 0.5);
        const double k = 2 * (1 - a2) / (g * (1 - a1 + a2));
        const double scale = 4 / (1 - a1 + a2);
        const double nb0 = b0 * scale, nb1 = b1 * scale, nb2 = b2 * scale;
        const double lp = (nb0 + nb1 + nb2) / (4 * g * g), bp = (nb0 - nb2) / (2 * g), hp = (nb0 - nb1 + nb2) / 4;
        const double a1s = 1 / (1 + g * (g + k));
        const double c[6] = {a1s, g * a1s, g, hp, bp - k * hp, lp - hp};
        if (std::all_of(c, c + 6, [](double v) { return std::isfinite(v); })) {
            out[0] = kSvf;
            std::copy(c, c + 6, out + 1);
            return;
        }
    }
    out[0] = kDf1;
    out[1] = b0, out[2] = b1, out[3] = b2, out[4] = -a1, out[5] = -a2;
}

// ---------------------------------------------------------------------------------------------------------
// paths of a per-channel (diagonal) or [out][in] node, in the order their values are stored

struct Path {
    int in, out;
};

std::vector<Path> paths(const PlanNode& node)
{
    std::vector<Path> out;
    if (node.diagonal)
        for (int n = 0; n < node.in; ++n) out.push_back({n, n});
    else
        for (int m = 0; m < node.out; ++m)
            for (int n = 0; n < node.in; ++n) out.push_back({n, m});
    return out;
}

void readDiagonal(Reader& r, const json& j, PlanNode& node)
{
    node.diagonal = r.flag(j, node, "diagonal");
    if (node.diagonal && node.in != node.out) r.fail(node, "a diagonal node needs as many outputs as inputs");
}

// a diagonal vector or an [out][in] matrix field, flattened in path order
std::vector<double> perPath(Reader& r, const json& value, const PlanNode& node, const char* what)
{
    return node.diagonal ? r.vector(value, node, what, size_t(node.in))
                         : r.matrix(value, node, what, size_t(node.out), size_t(node.in));
}

// a list field of per-path rows (FIR taps, section coefficients), flattened as [row][path]
std::vector<double> perPathRows(Reader& r, const json& list, const PlanNode& node, const char* what)
{
    std::vector<double> all;
    for (const json& row : list) {
        const std::vector<double> values = perPath(r, row, node, what);
        all.insert(all.end(), values.begin(), values.end());
    }
    return all;
}

// ---------------------------------------------------------------------------------------------------------
// a ring buffer per input channel (delays and FIRs)

template <class R> class History {
public:
    void prepare(int channels, size_t capacity, int maxBlock)
    {
        size = nextPowerOfTwo(capacity + size_t(maxBlock) + 1);
        mask = size - 1;
        data.assign(size_t(channels) * size, R(0));
        w = 0;
    }
    void reset() { std::fill(data.begin(), data.end(), R(0)); }
    void write(Sig<R> in, int channels, int n)
    {
        const size_t at = w & mask, first = std::min(size_t(n), size - at);  // up to the ring's end, then from its start
        for (int c = 0; c < channels; ++c) {
            R* ring = data.data() + size_t(c) * size;
            const R* x = in.ch(c);
            std::copy(x, x + first, ring + at);
            std::copy(x + first, x + n, ring);
        }
        w += size_t(n);
    }
    // n samples from `from` (a position in the stream) on, into out
    void read(int c, size_t from, int n, R* out) const
    {
        const R* ring = data.data() + size_t(c) * size;
        const size_t at = from & mask, first = std::min(size_t(n), size - at);
        std::copy(ring + at, ring + at + first, out);
        std::copy(ring, ring + (size_t(n) - first), out + first);
    }
    const R* ring(int c) const { return data.data() + size_t(c) * size; }
    size_t size = 0, mask = 0, w = 0;

private:
    std::vector<R> data;
};

// The rt60 control's decay per delay amount (one per path or tap): gamma^d, smoothed per sample from the value at
// the control's default (adac.backends.faust.controls: adac_rt60_gain).
template <class R> class Decays {
public:
    void prepare(size_t n) { z.assign(n, R(0)), target.assign(n, R(0)), base.assign(n, R(1)); }
    void reset() { std::fill(z.begin(), z.end(), R(0)); }
    void control(size_t i, double d, const Run<R>& run)
    {
        const R def = std::pow(run.gammaDefault, R(d));
        base[i] = def;
        target[i] = std::pow(run.gamma, R(d)) - def;
    }
    // multiplies y[0..n) by the decay of amount i
    void apply(size_t i, R* y, int n, R pole)
    {
        R s = z[i];
        const R x = (R(1) - pole) * target[i], def = base[i];
        for (int t = 0; t < n; ++t) {
            s = x + pole * s;
            y[t] *= s + def;
        }
        z[i] = s;
    }

private:
    std::vector<R> z, target, base;
};

// ---------------------------------------------------------------------------------------------------------
// delay, gain_delay: per path a gain, an integer delay and (fractional) Lagrange taps. Values per path:
// [gain, base, delay, taps...] with shape[path] taps.

void readDelay(Reader& r, const json& j, PlanNode& node)
{
    readDiagonal(r, j, node);
    r.flag(j, node, "integer");
    const std::vector<double> samples = perPath(r, r.field(j, node, "samples"), node, "samples");
    const std::vector<double> gains = node.kind == "gain_delay" ? perPath(r, r.field(j, node, "gains"), node, "gains")
                                                                : std::vector<double>(samples.size(), 1.0);
    double longest = 0;
    std::vector<double> taps;
    for (size_t p = 0; p < samples.size(); ++p) {
        const double d = samples[p];
        if (d < 0) r.fail(node, "a negative delay (" + std::to_string(d) + " samples)");
        if (d > r.options.limits.maxDelaySamples)
            r.fail(node, "a delay of " + std::to_string(d) + " samples is above the limit of " +
                             std::to_string(r.options.limits.maxDelaySamples));
        double base = d;
        if (d == std::round(d)) taps.assign(1, 1.0);
        else lagrange(d, r.order, base, taps);
        node.shape.push_back(int(taps.size()));
        r.push(gains[p]), r.push(base), r.push(d);
        for (double t : taps) r.push(t);
        longest = std::max(longest, base + double(taps.size()));
    }
    r.history(node, longest);
}

int delayLatency(const PlanNode& node, const double* v, const std::vector<int>&)
{
    int latency = kNoLatency;
    const double* p = v + node.offset;
    for (int taps : node.shape) {
        if (p[0] != 0) latency = std::min(latency, int(p[1]));
        p += 3 + taps;
    }
    return latency;
}

// A node that reads its input's history (delays, FIRs): a ring buffer per input and the rt60 control's decays.
// process writes the block and reads it back; pull reads before the block is written (n <= latency), push writes.
template <class R> class HistoryNode : public Node<R> {
public:
    HistoryNode(const PlanNode& p, size_t decayCount) : Node<R>(p), routes(paths(p)), decayCount(decayCount) {}
    void prepare(int maxBlock, std::vector<Node<R>*>& decaying) override
    {
        Node<R>::prepare(maxBlock, decaying);
        history.prepare(this->plan.in, this->plan.capacity, maxBlock);
        decay_.prepare(decayCount);
        work.assign(size_t(maxBlock), R(0));
    }
    void reset() override
    {
        history.reset();
        decay_.reset();
    }
    bool decays() const override { return true; }
    Sig<R> process(Sig<R> in, int n, const Run<R>& run) override
    {
        history.write(in, this->plan.in, n);
        return read(history.w - size_t(n), n, run);
    }
    Sig<R> pull(int n, const Run<R>& run) override { return read(history.w, n, run); }
    void push(Sig<R> in, int n, const Run<R>&) override { history.write(in, this->plan.in, n); }

protected:
    // the n outputs of the window whose first input is (or will be) written at `origin`
    virtual Sig<R> read(size_t origin, int n, const Run<R>& run) = 0;
    std::vector<Path> routes;
    History<R> history;
    Decays<R> decay_;
    std::vector<R> work;  // one path's n samples

private:
    size_t decayCount;
};

template <class R> class DelayNode final : public HistoryNode<R> {
public:
    explicit DelayNode(const PlanNode& p) : HistoryNode<R>(p, p.shape.size()) {}
    void control(const Run<R>& run) override
    {
        const double* v = run.values->real64.data() + this->plan.offset;
        for (size_t p = 0; p < this->routes.size(); ++p) {
            this->decay_.control(p, v[2], run);
            v += 3 + this->plan.shape[p];
        }
    }

private:
    Sig<R> read(size_t origin, int n, const Run<R>& run) override
    {
        Sig<R> y = this->own();
        if (!this->plan.diagonal)
            for (int m = 0; m < this->plan.out; ++m) std::fill(y.ch(m), y.ch(m) + n, R(0));
        const R* v = run.v + this->plan.offset;
        const bool decay = run.rt60 && this->plan.inLoop;
        for (size_t p = 0; p < this->routes.size(); ++p) {
            const int taps = this->plan.shape[p];
            const R gain = v[0];
            const size_t base = size_t(v[1]);
            const R* coefficients = v + 3;
            v += 3 + taps;
            R* out = y.ch(this->routes[p].out);
            if (gain == R(0)) {
                if (this->plan.diagonal) std::fill(out, out + n, R(0));
                continue;
            }
            const R* ring = this->history.ring(this->routes[p].in);
            const size_t mask = this->history.mask;
            R* target = this->plan.diagonal ? out : this->work.data();  // else summed into out below
            if (taps == 1) {
                this->history.read(this->routes[p].in, origin - base, n, target);
            } else {
                for (int t = 0; t < n; ++t) {
                    R acc = 0;
                    const size_t at = origin + size_t(t) - base;
                    for (int k = 0; k < taps; ++k) acc += coefficients[k] * ring[(at - size_t(k)) & mask];
                    target[t] = acc;
                }
            }
            if (decay) this->decay_.apply(p, target, n, run.smoothPole);
            if (gain != R(1))
                for (int t = 0; t < n; ++t) target[t] *= gain;
            if (!this->plan.diagonal)
                for (int t = 0; t < n; ++t) out[t] += target[t];
        }
        return y;
    }
};

// ---------------------------------------------------------------------------------------------------------
// fir: per path `K` taps (values: path after path)

void readFir(Reader& r, const json& j, PlanNode& node)
{
    readDiagonal(r, j, node);
    const json& taps = r.field(j, node, "taps");
    if (!taps.is_array() || taps.empty()) r.fail(node, "taps: expected a list of taps");
    const size_t k = taps.size();
    if (double(k) > r.options.limits.maxDelaySamples) r.fail(node, "taps: more taps than the longest delay");
    const std::vector<Path> routes = paths(node);
    const std::vector<double> all = perPathRows(r, taps, node, "taps");  // [k][path]
    node.shape = {int(k)};
    for (size_t p = 0; p < routes.size(); ++p)
        for (size_t i = 0; i < k; ++i) r.push(all[i * routes.size() + p]);
    r.history(node, double(k));
}

int firLatency(const PlanNode& node, const double* v, const std::vector<int>&)
{
    const int k = node.shape[0];
    int latency = kNoLatency;
    const size_t count = node.count / size_t(k);
    for (size_t p = 0; p < count; ++p)
        for (int i = 0; i < k; ++i)
            if (v[node.offset + p * size_t(k) + size_t(i)] != 0) {
                latency = std::min(latency, i);
                break;
            }
    return latency;
}

template <class R> class FirNode final : public HistoryNode<R> {
public:
    explicit FirNode(const PlanNode& p) : HistoryNode<R>(p, size_t(p.shape[0])) {}
    void control(const Run<R>& run) override
    {
        for (int k = 0; k < this->plan.shape[0]; ++k) this->decay_.control(size_t(k), double(k), run);
    }

private:
    // FAUST's order per tap: the delayed input, its decay (in a loop, with the rt60 control), then the tap
    Sig<R> read(size_t origin, int n, const Run<R>& run) override
    {
        Sig<R> y = this->own();
        for (int m = 0; m < this->plan.out; ++m) std::fill(y.ch(m), y.ch(m) + n, R(0));
        const int K = this->plan.shape[0];
        const bool decay = run.rt60 && this->plan.inLoop;
        const R* v = run.v + this->plan.offset;
        for (size_t p = 0; p < this->routes.size(); ++p, v += K) {
            R* out = y.ch(this->routes[p].out);
            for (int k = 0; k < K; ++k) {
                const R h = v[k];
                if (h == R(0)) continue;
                this->history.read(this->routes[p].in, origin - size_t(k), n, this->work.data());
                if (decay && k > 0) this->decay_.apply(size_t(k), this->work.data(), n, run.smoothPole);
                for (int t = 0; t < n; ++t) out[t] += this->work[size_t(t)] * h;
            }
        }
        return y;
    }
};

// ---------------------------------------------------------------------------------------------------------
// sos: per path K sections, each [form, p0..p5] (realised) and 4 states

// values section by section, field by field, path by path: v[(k * 7 + f) * paths + p] with f = form, p0..p5 (the
// coefficients of one section across every line are contiguous: the cascade runs across lines)
void readSos(Reader& r, const json& j, PlanNode& node)
{
    readDiagonal(r, j, node);
    const json& sections = r.field(j, node, "sections");
    if (!sections.is_array() || sections.empty()) r.fail(node, "sections: expected a list of sections");
    const size_t k = sections.size(), width = node.diagonal ? size_t(node.in) : size_t(node.in * node.out);
    if (k > 4096) r.fail(node, "sections: more than 4096 sections per path");
    std::vector<double> all;  // [k][6][path]
    for (const json& s : sections) {
        if (!s.is_array() || s.size() != 6) r.fail(node, "sections: each section has 6 coefficient rows");
        const std::vector<double> rows = perPathRows(r, s, node, "sections");
        all.insert(all.end(), rows.begin(), rows.end());
    }
    node.shape = {int(k)};
    std::vector<double> realised(k * 7 * width);
    double coefficients[6], one[7];
    for (size_t p = 0; p < width; ++p) {
        bool cut = false;
        for (size_t i = 0; i < k; ++i) {
            for (size_t c = 0; c < 6; ++c) coefficients[c] = all[(i * 6 + c) * width + p];
            section(coefficients, one);
            cut = cut || one[0] == kZero;
            for (size_t f = 0; f < 7; ++f) realised[(i * 7 + f) * width + p] = one[f];
        }
        if (cut)  // one vanishing numerator cuts the whole cascade
            for (size_t i = 0; i < k; ++i)
                for (size_t f = 0; f < 7; ++f) realised[(i * 7 + f) * width + p] = 0.0;
    }
    for (double x : realised) r.push(x);
}

int noLatency(const PlanNode&, const double*, const std::vector<int>&) { return 0; }

// Per-path cascades. A diagonal node of 4 lines or more runs across lines: the block is turned into frames (one
// sample of every line side by side), and each section whose lines are all state-variable filters runs with the
// lines as the vectorised dimension (the native kernel's method); other sections run line by line. The arithmetic
// per sample and line is the same either way. States: st[(k * 4 + s) * paths + p].
template <class R> class SosNode final : public Node<R> {
public:
    explicit SosNode(const PlanNode& p) : Node<R>(p), routes(paths(p)) {}
    void prepare(int maxBlock, std::vector<Node<R>*>& decaying) override
    {
        Node<R>::prepare(maxBlock, decaying);
        state.assign(routes.size() * size_t(this->plan.shape[0]) * 4, R(0));
        work.assign(size_t(maxBlock) * (acrossLines() ? routes.size() : 1), R(0));
    }
    void reset() override { std::fill(state.begin(), state.end(), R(0)); }
    Sig<R> process(Sig<R> in, int n, const Run<R>& run) override
    {
        Sig<R> y = this->own();
        const int K = this->plan.shape[0], P = int(routes.size());
        const R* v = run.v + this->plan.offset;
        if (acrossLines()) {
            R* frames = work.data();
            for (int p = 0; p < P; ++p) {
                const R* x = in.ch(p);
                for (int t = 0; t < n; ++t) frames[size_t(t) * size_t(P) + size_t(p)] = x[t];
            }
            for (int k = 0; k < K; ++k) {
                const R* form = v + size_t(k) * 7 * size_t(P);
                if (std::all_of(form, form + P, [](R f) { return int(f) == kSvf; })) {
                    svfAcross(v + size_t(k) * 7 * size_t(P), state.data() + size_t(k) * 4 * size_t(P), P, frames, n);
                } else {
                    for (int p = 0; p < P; ++p) section(v, k, p, P, frames + p, P, n);
                }
            }
            for (int p = 0; p < P; ++p) {
                R* out = y.ch(p);
                for (int t = 0; t < n; ++t) out[t] = frames[size_t(t) * size_t(P) + size_t(p)];
            }
            return y;
        }
        if (!this->plan.diagonal)
            for (int m = 0; m < this->plan.out; ++m) std::fill(y.ch(m), y.ch(m) + n, R(0));
        for (int p = 0; p < P; ++p) {
            R* w = this->plan.diagonal ? y.ch(routes[size_t(p)].out) : work.data();
            std::copy(in.ch(routes[size_t(p)].in), in.ch(routes[size_t(p)].in) + n, w);
            for (int k = 0; k < K; ++k) section(v, k, p, P, w, 1, n);
            if (!this->plan.diagonal) {
                R* out = y.ch(routes[size_t(p)].out);
                for (int t = 0; t < n; ++t) out[t] += w[t];
            }
        }
        return y;
    }

private:
    bool acrossLines() const { return this->plan.diagonal && this->plan.in >= 4; }

    // section k of every line at once: adac_svf, the lines vectorised
    static void svfAcross(const R* c, R* st, int P, R* frames, int n)
    {
        const R* __restrict a1 = c + size_t(P);
        const R* __restrict a2 = c + 2 * size_t(P);
        const R* __restrict g = c + 3 * size_t(P);
        const R* __restrict c0 = c + 4 * size_t(P);
        const R* __restrict c1 = c + 5 * size_t(P);
        const R* __restrict c2 = c + 6 * size_t(P);
        R* __restrict ic1 = st;
        R* __restrict ic2 = st + size_t(P);
        for (int t = 0; t < n; ++t) {
            R* __restrict x = frames + size_t(t) * size_t(P);
#pragma GCC ivdep
            for (int p = 0; p < P; ++p) {
                const R v0 = x[p], v3 = v0 - ic2[p], v1 = a1[p] * ic1[p] + a2[p] * v3, v2 = ic2[p] + g[p] * v1;
                x[p] = c0[p] * v0 + c1[p] * v1 + c2[p] * v2;
                ic1[p] = R(2) * v1 - ic1[p], ic2[p] = R(2) * v2 - ic2[p];
            }
        }
    }

    // section k of path p on x[0], x[stride], ... (n samples)
    void section(const R* v, int k, int p, int P, R* x, int stride, int n)
    {
        R c[7], st[4];
        for (int f = 0; f < 7; ++f) c[f] = v[(size_t(k) * 7 + size_t(f)) * size_t(P) + size_t(p)];
        R* states = state.data() + size_t(k) * 4 * size_t(P) + size_t(p);
        for (int s = 0; s < 4; ++s) st[s] = states[size_t(s) * size_t(P)];
        const size_t step = size_t(stride);
        switch (int(c[0])) {
        case kZero:
            for (int t = 0; t < n; ++t) x[size_t(t) * step] = R(0);
            break;
        case kFir: {
            R x1 = st[0], x2 = st[1];
            for (int t = 0; t < n; ++t) {
                const R in = x[size_t(t) * step];
                x[size_t(t) * step] = c[1] * in + c[2] * x1 + c[3] * x2;
                x2 = x1, x1 = in;
            }
            st[0] = x1, st[1] = x2;
            break;
        }
        case kSvf: {  // adac_svf: v3 = v0 - ic2; v1 = a1 ic1 + a2 v3; v2 = ic2 + g v1
            R ic1 = st[0], ic2 = st[1];
            const R a1 = c[1], a2 = c[2], g = c[3], c0 = c[4], c1 = c[5], c2 = c[6];
            for (int t = 0; t < n; ++t) {
                const R v0 = x[size_t(t) * step], v3 = v0 - ic2, v1 = a1 * ic1 + a2 * v3, v2 = ic2 + g * v1;
                x[size_t(t) * step] = c0 * v0 + c1 * v1 + c2 * v2;
                ic1 = R(2) * v1 - ic1, ic2 = R(2) * v2 - ic2;
            }
            st[0] = ic1, st[1] = ic2;
            break;
        }
        default: {  // adac_biquad: direct form I
            R x1 = st[0], x2 = st[1], y1 = st[2], y2 = st[3];
            for (int t = 0; t < n; ++t) {
                const R in = x[size_t(t) * step], out = (c[1] * in + c[2] * x1 + c[3] * x2) + (c[4] * y1 + c[5] * y2);
                x2 = x1, x1 = in, y2 = y1, y1 = out;
                x[size_t(t) * step] = out;
            }
            st[0] = x1, st[1] = x2, st[2] = y1, st[3] = y2;
        }
        }
        for (int s = 0; s < 4; ++s) states[size_t(s) * size_t(P)] = st[s];
    }
    std::vector<Path> routes;
    std::vector<R> state, work;
};

// ---------------------------------------------------------------------------------------------------------
// gain (diagonal gains or a matrix: one matrix product over the block) and householder (x - 2 u (u^T x))

// Hadamard structure detected from a matrix's values (adac.ir.hadamard.hadamard_form, the same rules):
// m[a][b] == row[a] col[b] H[pi[a]][sigma[b]], H Sylvester's (+-1 entries), to 1e-12 relative.
struct HadamardForm {
    std::vector<double> row, col;
    std::vector<int> pi, sigma;
};

int sylvester(int i, int j) { return __builtin_popcount(unsigned(i & j)) % 2 ? -1 : 1; }

bool sylvesterLabels(const std::vector<signed char>& signs, int n, std::vector<int>& pi, std::vector<int>& sigma)
{
    int k = 0;
    while ((1 << k) < n) ++k;
    std::map<std::vector<signed char>, int> span;
    span[std::vector<signed char>(signs.begin(), signs.begin() + n)] = 0;
    std::vector<int> generators;
    for (int a = 1; a < n; ++a) {
        std::vector<signed char> rowA(signs.begin() + size_t(a) * size_t(n), signs.begin() + size_t(a + 1) * size_t(n));
        if (span.count(rowA)) continue;
        if (int(generators.size()) == k) return false;
        const int bit = 1 << generators.size();
        generators.push_back(a);
        std::vector<std::pair<std::vector<signed char>, int>> before(span.begin(), span.end());
        for (auto& [v, mask] : before) {
            std::vector<signed char> product(static_cast<size_t>(n));
            for (int b = 0; b < n; ++b) product[size_t(b)] = static_cast<signed char>(v[size_t(b)] * rowA[size_t(b)]);
            span[product] = mask | bit;
        }
    }
    if (int(span.size()) != n) return false;
    pi.assign(size_t(n), -1);
    sigma.assign(size_t(n), 0);
    for (int a = 0; a < n; ++a) {
        auto it = span.find(std::vector<signed char>(signs.begin() + size_t(a) * size_t(n), signs.begin() + size_t(a + 1) * size_t(n)));
        if (it != span.end()) pi[size_t(a)] = it->second;
    }
    for (size_t m = 0; m < generators.size(); ++m)
        for (int b = 0; b < n; ++b)
            if (signs[size_t(generators[m]) * size_t(n) + size_t(b)] < 0) sigma[size_t(b)] |= 1 << m;
    std::vector<int> p = pi, q = sigma;
    std::sort(p.begin(), p.end()), std::sort(q.begin(), q.end());
    for (int a = 0; a < n; ++a)
        if (p[size_t(a)] != a || q[size_t(a)] != a) return false;
    for (int a = 0; a < n; ++a)
        for (int b = 0; b < n; ++b)
            if (sylvester(pi[size_t(a)], sigma[size_t(b)]) != signs[size_t(a) * size_t(n) + size_t(b)]) return false;
    return true;
}

bool hadamardForm(const std::vector<double>& m, int n, HadamardForm& f)
{
    constexpr double rtol = 1e-12;
    if (n < 2 || (n & (n - 1)) || n > 4096) return false;
    for (double x : m)
        if (!std::isfinite(x) || x == 0) return false;
    const auto at = [&](int a, int b) { return m[size_t(a) * size_t(n) + size_t(b)]; };
    const double first = at(0, 0), sign = first > 0 ? 1.0 : -1.0;
    f.row.resize(size_t(n)), f.col.resize(size_t(n));
    for (int a = 0; a < n; ++a) f.row[size_t(a)] = at(a, 0) * sign;
    for (int b = 0; b < n; ++b) f.col[size_t(b)] = at(0, b) / std::abs(first);
    const bool rowsEqual = std::all_of(f.row.begin(), f.row.end(), [&](double r) { return std::abs(r) == std::abs(f.row[0]); });
    const bool colsUnit = std::all_of(f.col.begin(), f.col.end(), [](double c) { return std::abs(c) == 1; });
    if (rowsEqual && !colsUnit) {  // column gains (H diag(g)): scale the inputs, not both sides
        const double scale = std::abs(f.row[0]);
        for (double& r : f.row) r = r > 0 ? 1.0 : r < 0 ? -1.0 : 0.0;
        for (double& c : f.col) c *= scale;
    }
    std::vector<signed char> signs(m.size());
    for (int a = 0; a < n; ++a)
        for (int b = 0; b < n; ++b) {
            const double ratio = at(a, b) / (f.row[size_t(a)] * f.col[size_t(b)]);
            if (std::abs(std::abs(ratio) - 1) > rtol) return false;
            signs[size_t(a) * size_t(n) + size_t(b)] = ratio > 0 ? 1 : -1;
        }
    if (!sylvesterLabels(signs, n, f.pi, f.sigma)) return false;
    for (int a = 0; a < n; ++a)
        for (int b = 0; b < n; ++b) {
            const double rebuilt = f.row[size_t(a)] * f.col[size_t(b)] * sylvester(f.pi[size_t(a)], f.sigma[size_t(b)]);
            if (std::abs(rebuilt - at(a, b)) > rtol * std::abs(at(a, b))) return false;
        }
    return true;
}

// values: diagonal gains; a matrix [out][in]; or (shape {1}) a Hadamard matrix's row, col, pi and sigma
void readGain(Reader& r, const json& j, PlanNode& node)
{
    readDiagonal(r, j, node);
    std::vector<double> g = node.diagonal ? r.vector(r.field(j, node, "gains"), node, "gains", size_t(node.in))
                                          : r.matrix(r.field(j, node, "matrix"), node, "matrix", size_t(node.out), size_t(node.in));
    HadamardForm form;
    if (!node.diagonal && node.in == node.out && hadamardForm(g, node.in, form)) {
        node.shape = {1};
        for (const auto* part : {&form.row, &form.col})
            for (double x : *part) r.push(x);
        for (const auto* part : {&form.pi, &form.sigma})
            for (int x : *part) r.push(double(x));
        return;
    }
    node.shape = {0};
    for (double x : g) r.push(x);
}

template <class R> using Rows = Eigen::Map<Eigen::Matrix<R, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0, Eigen::OuterStride<>>;
template <class R> using ConstRows = Eigen::Map<const Eigen::Matrix<R, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;

constexpr int kTile = 64;

template <class R> class GainNode final : public Node<R> {
public:
    using Node<R>::Node;
    Sig<R> process(Sig<R> in, int n, const Run<R>& run) override
    {
        Sig<R> y = this->own();
        const R* v = run.v + this->plan.offset;
        if (!this->plan.shape.empty() && this->plan.shape[0] == 1) return hadamard(in, y, n, v);
        if (this->plan.diagonal) {
            for (int c = 0; c < this->plan.in; ++c) {
                const R g = v[c];
                const R* x = in.ch(c);
                R* out = y.ch(c);
                for (int t = 0; t < n; ++t) out[t] = x[t] * g;
            }
            return y;
        }
        // one matrix product over the block (Eigen's GEMM), in tiles of at most 64 x 64 x 64: Eigen then packs its
        // operands on the stack (larger products allocate their packing buffers: not on the audio thread)
        const int rows = this->plan.out, depth = this->plan.in;
        Rows<R> out(y.p, rows, n, Eigen::OuterStride<>(Eigen::Index(y.stride)));
        Rows<R> x(in.p, depth, n, Eigen::OuterStride<>(Eigen::Index(in.stride)));
        ConstRows<R> m(v, rows, depth);
        for (int c = 0; c < n; c += kTile)
            for (int r = 0; r < rows; r += kTile)
                for (int k = 0; k < depth; k += kTile) {
                    const int nc = std::min(kTile, n - c), nr = std::min(kTile, rows - r), nk = std::min(kTile, depth - k);
                    auto tile = out.block(r, c, nr, nc);
                    if (k == 0) tile.noalias() = m.block(r, k, nr, nk) * x.block(k, c, nk, nc);
                    else tile.noalias() += m.block(r, k, nr, nk) * x.block(k, c, nk, nc);
                }
        return y;
    }

private:
    // y = diag(row) P_pi H P_sigma diag(col) x as a fast Walsh-Hadamard transform over the block:
    // N log2 N additions per sample, each stage vectorised over time
    Sig<R> hadamard(Sig<R> in, Sig<R> y, int n, const R* v)
    {
        const int N = this->plan.in;
        const R *row = v, *col = v + N, *pi = v + 2 * N, *sigma = v + 3 * N;
        for (int b = 0; b < N; ++b) {  // transform input sigma[b] takes column b
            const R* x = in.ch(b);
            R* z = y.ch(int(sigma[b]));
            for (int t = 0; t < n; ++t) z[t] = x[t] * col[b];
        }
        for (int h = 1; h < N; h *= 2)
            for (int i = 0; i < N; i += 2 * h)
                for (int k = i; k < i + h; ++k) {
                    R *a = y.ch(k), *b = y.ch(k + h);
                    for (int t = 0; t < n; ++t) {
                        const R s = a[t] + b[t], d = a[t] - b[t];
                        a[t] = s, b[t] = d;
                    }
                }
        // output a takes transform output pi[a]: a permutation applied through the scratch rows
        Sig<R> z = scratch();
        for (int a = 0; a < N; ++a) {
            const R* from = y.ch(int(pi[a]));
            R* to = z.ch(a);
            for (int t = 0; t < n; ++t) to[t] = from[t] * row[a];
        }
        return z;
    }
    Sig<R> scratch()
    {
        return {permuted.data(), this->stride};
    }

public:
    void prepare(int maxBlock, std::vector<Node<R>*>& decaying) override
    {
        Node<R>::prepare(maxBlock, decaying);
        if (!this->plan.shape.empty() && this->plan.shape[0] == 1) permuted.assign(size_t(this->plan.out) * this->stride, R(0));
    }

private:
    std::vector<R> permuted;
};

void readHouseholder(Reader& r, const json& j, PlanNode& node)
{
    if (node.in != node.out) r.fail(node, "a Householder reflection needs as many outputs as inputs");
    for (double x : r.vector(r.field(j, node, "u"), node, "u", size_t(node.in))) r.push(x);
}

template <class R> class HouseholderNode final : public Node<R> {
public:
    using Node<R>::Node;
    void prepare(int maxBlock, std::vector<Node<R>*>& decaying) override
    {
        Node<R>::prepare(maxBlock, decaying);
        dot.assign(size_t(maxBlock), R(0));
    }
    Sig<R> process(Sig<R> in, int n, const Run<R>& run) override
    {
        Sig<R> y = this->own();
        const R* u = run.v + this->plan.offset;
        std::fill(dot.begin(), dot.begin() + n, R(0));
        for (int c = 0; c < this->plan.in; ++c) {
            const R* x = in.ch(c);
            for (int t = 0; t < n; ++t) dot[size_t(t)] += u[c] * x[t];
        }
        for (int c = 0; c < this->plan.in; ++c) {
            const R* x = in.ch(c);
            const R u2 = R(2) * u[c];
            R* out = y.ch(c);
            for (int t = 0; t < n; ++t) out[t] = x[t] - u2 * dot[size_t(t)];
        }
        return y;
    }

private:
    std::vector<R> dot;
};

// ---------------------------------------------------------------------------------------------------------
// series, parallel, recursion

std::vector<PlanNode> readChildren(Reader& r, const json& j, PlanNode& node, const char* name)
{
    const json& list = r.field(j, node, name);
    if (!list.is_array() || list.empty()) r.fail(node, std::string("'") + name + "' must be a list of nodes");
    std::vector<PlanNode> out;
    for (const json& c : list) out.push_back(r.child(c));
    return out;
}

void readSeries(Reader& r, const json& j, PlanNode& node)
{
    node.children = readChildren(r, j, node, "children");
    int channels = node.in;
    for (const PlanNode& c : node.children) {
        if (c.in != channels) r.fail(node, "child " + (c.path.empty() ? c.kind : c.path) + " takes " + std::to_string(c.in) +
                                               " channels, its predecessor gives " + std::to_string(channels));
        channels = c.out;
    }
    if (channels != node.out) r.fail(node, "the last child gives " + std::to_string(channels) + " channels, not " + std::to_string(node.out));
}

int seriesLatency(const PlanNode& node, const double*, const std::vector<int>& latency)
{
    int l = 0;
    for (const PlanNode& c : node.children) l = std::max(l, latency[size_t(c.index)]);
    return l;
}

template <class R> class SeriesNode final : public Node<R> {
public:
    explicit SeriesNode(const PlanNode& p) : Node<R>(p)
    {
        for (const PlanNode& c : p.children) children.push_back(makeNode<R>(c));
    }
    void prepare(int maxBlock, std::vector<Node<R>*>& decaying) override
    {
        for (auto& c : children) c->prepare(maxBlock, decaying);
    }
    void reset() override
    {
        for (auto& c : children) c->reset();
    }
    Sig<R> process(Sig<R> in, int n, const Run<R>& run) override
    {
        for (auto& c : children) in = c->process(in, n, run);
        return in;
    }
    // through the child with the longest latency: the ones after it run in pull, the ones before in push
    Sig<R> pull(int n, const Run<R>& run) override
    {
        pivot = 0;
        for (size_t i = 1; i < children.size(); ++i)
            if (children[i]->latency(run) > children[pivot]->latency(run)) pivot = i;
        Sig<R> y = children[pivot]->pull(n, run);
        for (size_t i = pivot + 1; i < children.size(); ++i) y = children[i]->process(y, n, run);
        return y;
    }
    void push(Sig<R> in, int n, const Run<R>& run) override
    {
        for (size_t i = 0; i < pivot; ++i) in = children[i]->process(in, n, run);
        children[pivot]->push(in, n, run);
    }

private:
    std::vector<std::unique_ptr<Node<R>>> children;
    size_t pivot = 0;
};

void readParallel(Reader& r, const json& j, PlanNode& node)
{
    node.sumOutput = r.flag(j, node, "sum_output");
    node.children = readChildren(r, j, node, "children");
    if (node.children.size() != 2) r.fail(node, "a parallel node has two children");
    const PlanNode &a = node.children[0], &b = node.children[1];
    if (a.in != node.in || b.in != node.in) r.fail(node, "both children must take the node's " + std::to_string(node.in) + " inputs");
    if (node.sumOutput ? (a.out != node.out || b.out != node.out) : (a.out + b.out != node.out))
        r.fail(node, "the children's outputs do not make the node's " + std::to_string(node.out));
}

int parallelLatency(const PlanNode& node, const double*, const std::vector<int>& latency)
{
    return std::min(latency[size_t(node.children[0].index)], latency[size_t(node.children[1].index)]);
}

template <class R> class ParallelNode final : public Node<R> {
public:
    explicit ParallelNode(const PlanNode& p) : Node<R>(p)
    {
        for (const PlanNode& c : p.children) children.push_back(makeNode<R>(c));
    }
    void prepare(int maxBlock, std::vector<Node<R>*>& decaying) override
    {
        Node<R>::prepare(maxBlock, decaying);
        for (auto& c : children) c->prepare(maxBlock, decaying);
    }
    void reset() override
    {
        for (auto& c : children) c->reset();
    }
    Sig<R> process(Sig<R> in, int n, const Run<R>& run) override
    {
        Sig<R> a = children[0]->process(in, n, run);
        Sig<R> b = children[1]->process(in, n, run);
        return join(a, b, n);
    }
    Sig<R> pull(int n, const Run<R>& run) override
    {
        Sig<R> a = children[0]->pull(n, run);
        Sig<R> b = children[1]->pull(n, run);
        return join(a, b, n);
    }
    void push(Sig<R> in, int n, const Run<R>& run) override
    {
        children[0]->push(in, n, run);
        children[1]->push(in, n, run);
    }

private:
    Sig<R> join(Sig<R> a, Sig<R> b, int n)
    {
        Sig<R> y = this->own();
        const int na = children[0]->plan.out;
        for (int c = 0; c < this->plan.out; ++c) {
            R* out = y.ch(c);
            if (this->plan.sumOutput) {
                const R *x = a.ch(c), *z = b.ch(c);
                for (int t = 0; t < n; ++t) out[t] = x[t] + z[t];
            } else {
                const R* x = c < na ? a.ch(c) : b.ch(c - na);
                std::copy(x, x + n, out);
            }
        }
        return y;
    }
    std::vector<std::unique_ptr<Node<R>>> children;
};

void readRecursion(Reader& r, const json& j, PlanNode& node)
{
    ++r.loopDepth;
    node.children.push_back(r.child(r.field(j, node, "feedforward")));
    node.children.push_back(r.child(r.field(j, node, "feedback")));
    --r.loopDepth;
    const PlanNode &f = node.children[0], &g = node.children[1];
    if (f.in != node.in || f.out != node.out) r.fail(node, "the feedforward path must map the node's inputs to its outputs");
    if (g.in != f.out || g.out != f.in) r.fail(node, "the feedback path must map the outputs back to the inputs");
}

// y = F(x + G y) in blocks no longer than the latency of F (or of G): within such a block the loop's output
// cannot reach its own input, so F's next outputs are read first (pull), then fed back through G and the
// block's input is written (push). A latency of 1 runs sample by sample.
template <class R> class RecursionNode final : public Node<R> {
public:
    explicit RecursionNode(const PlanNode& p) : Node<R>(p), f(makeNode<R>(p.children[0])), g(makeNode<R>(p.children[1])) {}
    void prepare(int maxBlock, std::vector<Node<R>*>& decaying) override
    {
        Node<R>::prepare(maxBlock, decaying);
        f->prepare(maxBlock, decaying);
        g->prepare(maxBlock, decaying);
        sum.assign(size_t(this->plan.in) * this->stride, R(0));
    }
    void reset() override { f->reset(), g->reset(); }
    Sig<R> process(Sig<R> in, int n, const Run<R>& run) override
    {
        Sig<R> y = this->own(), u{sum.data(), this->stride};
        const int lf = f->latency(run), lg = g->latency(run);
        const bool forward = lf >= lg;
        const int step = std::max(1, forward ? lf : lg);  // the loader refused loops with no latency
        for (int pos = 0; pos < n; pos += step) {
            const int len = std::min(step, n - pos);
            Sig<R> x = in.at(pos), out;
            if (forward) {
                out = f->pull(len, run);
                add(x, g->process(out, len, run), u, len);
                copy(out, y.at(pos), this->plan.out, len);
                f->push(u, len, run);
            } else {
                add(x, g->pull(len, run), u, len);
                out = f->process(u, len, run);
                copy(out, y.at(pos), this->plan.out, len);
                g->push(out, len, run);
            }
        }
        return y;
    }

private:
    void add(Sig<R> a, Sig<R> b, Sig<R> out, int n)
    {
        for (int c = 0; c < this->plan.in; ++c) {
            const R *x = a.ch(c), *z = b.ch(c);
            R* o = out.ch(c);
            for (int t = 0; t < n; ++t) o[t] = x[t] + z[t];
        }
    }
    static void copy(Sig<R> from, Sig<R> to, int channels, int n)
    {
        for (int c = 0; c < channels; ++c) std::copy(from.ch(c), from.ch(c) + n, to.ch(c));
    }
    std::unique_ptr<Node<R>> f, g;
    std::vector<R> sum;
};

template <template <class> class N> std::unique_ptr<Node<float>> makeF(const PlanNode& p) { return std::make_unique<N<float>>(p); }
template <template <class> class N> std::unique_ptr<Node<double>> makeD(const PlanNode& p) { return std::make_unique<N<double>>(p); }

}  // namespace

const std::vector<KindRow>& kindTable()
{
    static const std::vector<KindRow> table = {
        {"series", readSeries, seriesLatency, makeF<SeriesNode>, makeD<SeriesNode>},
        {"parallel", readParallel, parallelLatency, makeF<ParallelNode>, makeD<ParallelNode>},
        {"recursion", readRecursion, noLatency, makeF<RecursionNode>, makeD<RecursionNode>},
        {"delay", readDelay, delayLatency, makeF<DelayNode>, makeD<DelayNode>},
        {"gain_delay", readDelay, delayLatency, makeF<DelayNode>, makeD<DelayNode>},
        {"gain", readGain, noLatency, makeF<GainNode>, makeD<GainNode>},
        {"householder", readHouseholder, noLatency, makeF<HouseholderNode>, makeD<HouseholderNode>},
        {"fir", readFir, firLatency, makeF<FirNode>, makeD<FirNode>},
        {"sos", readSos, noLatency, makeF<SosNode>, makeD<SosNode>},
    };
    return table;
}

const KindRow& kindRow(const std::string& kind)
{
    for (const KindRow& row : kindTable())
        if (kind == row.name) return row;
    throw Error("the runtime has no processor for IR node kind '" + kind + "'");
}

template <> std::unique_ptr<Node<float>> makeNode<float>(const PlanNode& node) { return kindRow(node.kind).makeFloat(node); }
template <> std::unique_ptr<Node<double>> makeNode<double>(const PlanNode& node) { return kindRow(node.kind).makeDouble(node); }

}  // namespace adac::runtime::detail
