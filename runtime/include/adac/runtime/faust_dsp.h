// adac runtime as a FAUST `dsp`: a model played by the runtime, for any host written against FAUST's dsp
// interface (the render driver, the hot-reload engine, the JUCE template). The macro-controls are sliders at
// their FAUST addresses (/adac/rt60, /adac/dry_wet, /adac/pre_delay), as in the FAUST backend's class.
// Header-only; needs FAUST's headers (faust/dsp/dsp.h) and the runtime library.
#pragma once

#include <string>

#include "adac/runtime/model.h"
#include "adac/runtime/processor.h"
#include "faust/dsp/dsp.h"
#include "faust/gui/UI.h"
#include "faust/gui/meta.h"

namespace adac::runtime {

template <class R> class FaustDsp : public dsp {
public:
    static constexpr int kMaxBlock = 512;  // compute() takes any count, in pieces of this size

    explicit FaustDsp(Model model) : model_(model), processor_(std::move(model)) { resetZones(); }

    Processor<R>& processor() { return processor_; }
    const Model& model() const { return model_; }

    int getNumInputs() override { return model_.plan->inputs; }
    int getNumOutputs() override { return model_.plan->outputs; }
    void buildUserInterface(UI* ui) override
    {
        const Plan& p = *model_.plan;
        if (!(p.controls[0] || p.controls[1] || p.controls[2])) return;
        const Controls& c = model_.values->controls;
        const ControlSpec* specs[3] = {&c.rt60, &c.dryWet, &c.preDelay};
        ui->openHorizontalBox("adac");
        for (int i = 0; i < 3; ++i) {
            if (!p.controls[i]) continue;
            if (*kControlUnits[i]) ui->declare(&zones_[i], "unit", kControlUnits[i]);
            ui->addHorizontalSlider(kControlNames[i], &zones_[i], FAUSTFLOAT(specs[i]->defaultValue), FAUSTFLOAT(specs[i]->min),
                                    FAUSTFLOAT(specs[i]->max), FAUSTFLOAT(kControlSteps[i]));
        }
        ui->closeBox();
    }
    int getSampleRate() override { return sampleRate_; }
    void init(int sampleRate) override
    {
        instanceInit(sampleRate);
    }
    void instanceInit(int sampleRate) override
    {
        instanceConstants(sampleRate);
        instanceResetUserInterface();
        instanceClear();
    }
    void instanceConstants(int sampleRate) override
    {
        sampleRate_ = sampleRate;
        processor_.prepare(double(sampleRate), kMaxBlock);
    }
    void instanceResetUserInterface() override { resetZones(); }
    void instanceClear() override { processor_.reset(); }
    dsp* clone() override { return new FaustDsp(model_); }
    void metadata(Meta* m) override
    {
        m->declare("name", model_.plan->name.c_str());
        m->declare("adac_runtime", "1");
    }
    void compute(int count, FAUSTFLOAT** inputs, FAUSTFLOAT** outputs) override
    {
        for (int i = 0; i < 3; ++i) processor_.setControl(i, double(zones_[i]));
        processor_.process(count, inputs, outputs);
    }
    void compute(double, int count, FAUSTFLOAT** inputs, FAUSTFLOAT** outputs) override { compute(count, inputs, outputs); }

private:
    void resetZones()
    {
        processor_.resetControls();
        for (int i = 0; i < 3; ++i) zones_[i] = FAUSTFLOAT(processor_.control(i));
    }
    Model model_;
    Processor<R> processor_;
    FAUSTFLOAT zones_[3] = {0, 0, 0};
    int sampleRate_ = 0;
};

}  // namespace adac::runtime
