#include "adac/runtime/processor.h"

#include <cmath>

#include "kinds.h"

namespace adac::runtime {

template <class R> struct Processor<R>::State {
    std::unique_ptr<detail::Node<R>> root;
    std::vector<detail::Node<R>*> decaying;  // nodes inside loops whose delays the rt60 control scales
    // pre_delay: a linearly interpolated line per input (de.fdelay), its glide's state
    std::vector<R> preRing, preOut;
    size_t preSize = 0, preW = 0;
    int preMax = 0;  // de.fdelay's n
    R preGlide = 0, mixGlide = 0;
};

template <class R> Processor<R>::Processor(Model model) : model_(std::move(model)), values_(model_.values.get()), state_(new State)
{
    state_->root = detail::makeNode<R>(model_.plan->root);
    resetControls();
}

template <class R> Processor<R>::~Processor() = default;

template <class R> void Processor<R>::prepare(double sampleRate, int maxBlock)
{
    sampleRate_ = sampleRate;
    maxBlock_ = std::max(1, maxBlock);
    const Plan& p = plan();
    const size_t block = size_t(maxBlock_);
    input_.assign(size_t(p.inputs) * block, R(0));
    output_.assign(size_t(p.outputs) * block, R(0));
    state_->decaying.clear();
    state_->root->prepare(maxBlock_, state_->decaying);
    if (p.controls[kPreDelay]) {
        // sized for the control's maximum at the highest rate (adac.backends.faust.controls)
        state_->preMax = int(std::ceil(values_->controls.preDelay.max / 1000 * kMaxSampleRate)) + 2;
        state_->preSize = detail::nextPowerOfTwo(size_t(state_->preMax) + 2 + block);
        state_->preRing.assign(size_t(p.inputs) * state_->preSize, R(0));
        state_->preOut.assign(size_t(p.inputs) * block, R(0));
    }
    reset();
}

template <class R> void Processor<R>::reset()
{
    state_->root->reset();
    std::fill(state_->preRing.begin(), state_->preRing.end(), R(0));
    state_->preW = 0;
    state_->preGlide = state_->mixGlide = 0;
}

template <class R> void Processor<R>::resetControls()
{
    const Controls& c = values_->controls;
    position_[kRt60] = c.rt60.defaultValue;
    position_[kDryWet] = c.dryWet.defaultValue;
    position_[kPreDelay] = c.preDelay.defaultValue;
}

template <class R> void Processor<R>::setControl(int index, double value)
{
    if (index < 0 || index > 2 || !plan().controls[index]) return;
    const Controls& c = values_->controls;
    const ControlSpec& spec = index == kRt60 ? c.rt60 : index == kDryWet ? c.dryWet : c.preDelay;
    position_[index] = std::isfinite(value) ? std::min(spec.max, std::max(spec.min, value)) : spec.defaultValue;
}

template <class R> void Processor<R>::compute(int n)
{
    const Plan& p = plan();
    const Values& v = *values_;
    const Controls& c = v.controls;
    State& s = *state_;
    const R sr = R(std::min(kMaxSampleRate, std::max(1.0, sampleRate_)));
    const R smoo = R(1) - R(44.1) / sr;  // si.smoo

    detail::Run<R> run;
    run.v = v.data<R>();
    run.values = &v;
    run.smoothPole = smoo;
    if (p.controls[kRt60]) {
        // 10^(3/SR (T - T0')/(T T0')) with T0' the trained T60 at the running rate (exactly 1 at T == T0'), or
        // 10^(-3/(SR T)) for a lossless model; clamped to the certified maximum
        const R gmax = R(c.rt60GammaMax);
        auto gammaOf = [&](R t) {
            if (c.rt60Trained == 0) return std::min(gmax, std::pow(R(10), R(-3) / (sr * t)));
            const R trained = R(c.rt60Trained) * (R(p.fs) / sr);
            return std::min(gmax, std::pow(R(10), R(3) / sr * (t - trained) / (t * trained)));
        };
        run.rt60 = true;
        run.gamma = gammaOf(R(position_[kRt60]));
        run.gammaDefault = gammaOf(R(c.rt60.defaultValue));
        for (detail::Node<R>* node : s.decaying) node->control(run);
    }

    const size_t block = size_t(maxBlock_);
    detail::Sig<R> x{input_.data(), block};
    if (p.controls[kPreDelay]) {
        // de.fdelay(n, d): x@min(n+1, int(d)) (1 - frac d) + x@min(n+1, int(d) + 1) frac d, d gliding in ms
        const R pole = std::exp(R(-1) / (R(kPreDelaySmoothingSeconds) * sr));
        const R target = R(position_[kPreDelay]) - R(c.preDelay.defaultValue), def = R(c.preDelay.defaultValue);
        const size_t mask = s.preSize - 1;
        for (int t = 0; t < n; ++t) {
            s.preGlide = (R(1) - pole) * target + pole * s.preGlide;
            const R d = (s.preGlide + def) * sr / R(1000);
            const R whole = std::floor(d), frac = d - whole;
            const size_t i0 = size_t(std::min(R(s.preMax + 1), std::max(R(0), whole)));
            const size_t i1 = size_t(std::min(R(s.preMax + 1), std::max(R(0), whole + 1)));
            const size_t at = s.preW + size_t(t);
            for (int ch = 0; ch < p.inputs; ++ch) {
                R* ring = s.preRing.data() + size_t(ch) * s.preSize;
                ring[at & mask] = x.ch(ch)[t];
                s.preOut[size_t(ch) * block + size_t(t)] = ring[(at - i0) & mask] * (R(1) - frac) + ring[(at - i1) & mask] * frac;
            }
        }
        s.preW += size_t(n);
        x = {s.preOut.data(), block};
    }

    detail::Sig<R> y = s.root->process(x, n, run);

    R* out = output_.data();
    if (!p.controls[kDryWet]) {
        for (int ch = 0; ch < p.outputs; ++ch) std::copy(y.ch(ch), y.ch(ch) + n, out + size_t(ch) * block);
        return;
    }
    // the dry signal is the input (not pre-delayed), duplicated from mono; equal power or linear
    const R target = R(position_[kDryWet]) - R(c.dryWet.defaultValue), def = R(c.dryWet.defaultValue);
    for (int t = 0; t < n; ++t) {
        s.mixGlide = (R(1) - smoo) * target + smoo * s.mixGlide;
        const R mix = s.mixGlide + def;
        const R dry = c.dryWetLinear ? R(1) - mix : std::sqrt(std::max(R(0), R(1) - mix));
        const R wet = c.dryWetLinear ? mix : std::sqrt(std::max(R(0), mix));
        for (int ch = 0; ch < p.outputs; ++ch) {
            const R in = input_[size_t(p.inputs == 1 ? 0 : ch) * block + size_t(t)];
            out[size_t(ch) * block + size_t(t)] = in * dry + y.ch(ch)[t] * wet;
        }
    }
}

template class Processor<float>;
template class Processor<double>;

}  // namespace adac::runtime
