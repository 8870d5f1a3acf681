// adac runtime: one playing instance of a Model (state, buffers, the macro-controls), in float or double.
//
//   Model m = load(text);
//   Processor<float> p(m);
//   p.prepare(48000, 512);              // allocates: not on the audio thread
//   p.setControl(kRt60, 2.0);           // audio thread from here on: no allocation, no lock, no system call
//   p.process(n, inputs, outputs);      // any n; inputs [Plan::inputs][n], outputs [Plan::outputs][n]
//   p.setValues(next.get());            // a model of the same structure (Plan::signature): new numbers, state kept
//
// The macro-controls mean what they mean in the FAUST backend (adac.backends.faust.controls): read once per
// process call, smoothed per sample (si.smoo; the pre-delay glides with a 50 ms one-pole), rt60 scales every
// delay inside a loop by gamma^d.
#pragma once

#include <algorithm>
#include <memory>
#include <vector>

#include "adac/runtime/model.h"

namespace adac::runtime {

enum ControlIndex { kRt60 = 0, kDryWet = 1, kPreDelay = 2 };

template <class R> class Processor {
public:
    explicit Processor(Model model);
    ~Processor();
    Processor(const Processor&) = delete;
    Processor& operator=(const Processor&) = delete;

    const Plan& plan() const { return *model_.plan; }
    const Values& values() const { return *values_; }
    int maxBlock() const { return maxBlock_; }
    double sampleRate() const { return sampleRate_; }

    // Not on the audio thread: buffers for blocks of up to maxBlock samples; clears the state; controls to defaults.
    void prepare(double sampleRate, int maxBlock);
    void reset();  // clears the state (no allocation)

    // Audio thread. `values` must belong to a plan with this plan's signature and outlive its use (the caller
    // owns it; a player keeps the snapshot alive until the audio thread has let it go).
    void setValues(const Values* values) { values_ = values; }
    // a control's position, clamped to its range; ignored for a control the model does not have
    void setControl(int index, double value);
    double control(int index) const { return position_[index]; }
    void resetControls();

    template <class F> void process(int n, const F* const* in, F* const* out)
    {
        const int nin = plan().inputs, nout = plan().outputs;
        for (int done = 0; done < n;) {
            const int len = std::min(maxBlock_, n - done);
            for (int c = 0; c < nin; ++c) {
                R* x = input_.data() + size_t(c) * size_t(maxBlock_);
                for (int t = 0; t < len; ++t) x[t] = R(in[c][done + t]);
            }
            compute(len);
            for (int c = 0; c < nout; ++c) {
                const R* y = output_.data() + size_t(c) * size_t(maxBlock_);
                for (int t = 0; t < len; ++t) out[c][done + t] = F(y[t]);
            }
            done += len;
        }
    }

private:
    struct State;
    void compute(int n);  // input_ to output_, n <= maxBlock

    Model model_;
    const Values* values_;
    double sampleRate_ = 0;
    int maxBlock_ = 0;
    double position_[3] = {0, 0, 0};
    std::vector<R> input_, output_;
    std::unique_ptr<State> state_;
};

extern template class Processor<float>;
extern template class Processor<double>;

}  // namespace adac::runtime
