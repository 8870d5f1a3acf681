// adac JUCE plugin: wraps a FAUST-generated DSP class as an AudioProcessor.
// Model-independent: the model comes from adacCreateFaustDsp() (FaustDsp.cpp), the identity from
// the CMake project (JucePlugin_* definitions). Every FAUST UI element becomes an automatable host
// parameter whose ID is its FAUST address (stable across rebuilds), with its label, range, step
// and default.
#include <juce_audio_processors/juce_audio_processors.h>
#include <juce_audio_utils/juce_audio_utils.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "faust/gui/UI.h"
#include "faust/gui/meta.h"
#include "FaustDsp.h"

namespace {

struct FaustControl {
    std::string address, label;
    FAUSTFLOAT* zone;
    float init, min, max, step;
    bool toggle;
};

// Collects the FAUST UI elements with their full addresses (/group/.../label).
class ControlCollector : public UI {
public:
    std::vector<FaustControl> controls;

    void openTabBox(const char* label) override { groups.push_back(label); }
    void openHorizontalBox(const char* label) override { groups.push_back(label); }
    void openVerticalBox(const char* label) override { groups.push_back(label); }
    void closeBox() override { if (!groups.empty()) groups.pop_back(); }
    void addButton(const char* label, FAUSTFLOAT* zone) override { add(label, zone, 0, 0, 1, 1, true); }
    void addCheckButton(const char* label, FAUSTFLOAT* zone) override { add(label, zone, 0, 0, 1, 1, true); }
    void addVerticalSlider(const char* l, FAUSTFLOAT* z, FAUSTFLOAT i, FAUSTFLOAT mn, FAUSTFLOAT mx, FAUSTFLOAT s) override { add(l, z, i, mn, mx, s, false); }
    void addHorizontalSlider(const char* l, FAUSTFLOAT* z, FAUSTFLOAT i, FAUSTFLOAT mn, FAUSTFLOAT mx, FAUSTFLOAT s) override { add(l, z, i, mn, mx, s, false); }
    void addNumEntry(const char* l, FAUSTFLOAT* z, FAUSTFLOAT i, FAUSTFLOAT mn, FAUSTFLOAT mx, FAUSTFLOAT s) override { add(l, z, i, mn, mx, s, false); }
    void addHorizontalBargraph(const char*, FAUSTFLOAT*, FAUSTFLOAT, FAUSTFLOAT) override {}
    void addVerticalBargraph(const char*, FAUSTFLOAT*, FAUSTFLOAT, FAUSTFLOAT) override {}
    void addSoundfile(const char*, const char*, Soundfile**) override {}
    void declare(FAUSTFLOAT*, const char*, const char*) override {}

private:
    std::vector<std::string> groups;

    void add(const char* label, FAUSTFLOAT* zone, FAUSTFLOAT init, FAUSTFLOAT min, FAUSTFLOAT max, FAUSTFLOAT step, bool toggle)
    {
        std::string address;
        for (const auto& g : groups) address += "/" + g;
        address += "/" + std::string(label);
        controls.push_back({address, label, zone, (float) init, (float) min, (float) max, (float) step, toggle});
    }
};

class AdacProcessor : public juce::AudioProcessor {
public:
    AdacProcessor() : AdacProcessor(adacCreateFaustDsp()) {}

    const juce::String getName() const override { return JucePlugin_Name; }
    bool acceptsMidi() const override { return false; }
    bool producesMidi() const override { return false; }
    bool isMidiEffect() const override { return false; }
    double getTailLengthSeconds() const override { return 10.0; }
    int getNumPrograms() override { return 1; }
    int getCurrentProgram() override { return 0; }
    void setCurrentProgram(int) override {}
    const juce::String getProgramName(int) override { return "Default"; }
    void changeProgramName(int, const juce::String&) override {}
    bool hasEditor() const override { return true; }
    juce::AudioProcessorEditor* createEditor() override { return new juce::GenericAudioProcessorEditor(*this); }

    bool isBusesLayoutSupported(const BusesLayout& layouts) const override
    {
        return layouts.getMainInputChannels() == faust->getNumInputs()
            && layouts.getMainOutputChannels() == faust->getNumOutputs();
    }

    void prepareToPlay(double sampleRate, int samplesPerBlock) override
    {
        faust->init((int) sampleRate);
        pushParameters();
        const int n = juce::jmax(1, samplesPerBlock);
        scratchIn.setSize(juce::jmax(1, faust->getNumInputs()), n);
        scratchOut.setSize(juce::jmax(1, faust->getNumOutputs()), n);
    }

    void releaseResources() override {}

    void processBlock(juce::AudioBuffer<float>& buffer, juce::MidiBuffer&) override
    {
        juce::ScopedNoDenormals noDenormals;
        pushParameters();
        const int numSamples = buffer.getNumSamples();
        const int nin = faust->getNumInputs(), nout = faust->getNumOutputs();
        if (scratchIn.getNumSamples() < numSamples) {  // a host exceeding its announced block size
            scratchIn.setSize(juce::jmax(1, nin), numSamples, false, false, true);
            scratchOut.setSize(juce::jmax(1, nout), numSamples, false, false, true);
        }
        // FAUST may not compute in place: copy the inputs, render into scratch, copy back.
        for (int c = 0; c < nin; ++c)
            scratchIn.copyFrom(c, 0, buffer, juce::jmin(c, buffer.getNumChannels() - 1), 0, numSamples);
        inputs.resize((size_t) nin);
        outputs.resize((size_t) nout);
        for (int c = 0; c < nin; ++c) inputs[(size_t) c] = scratchIn.getWritePointer(c);
        for (int c = 0; c < nout; ++c) outputs[(size_t) c] = scratchOut.getWritePointer(c);
        faust->compute(numSamples, inputs.data(), outputs.data());
        for (int c = 0; c < buffer.getNumChannels(); ++c) {
            if (c < nout) buffer.copyFrom(c, 0, scratchOut, c, 0, numSamples);
            else buffer.clear(c, 0, numSamples);
        }
    }

    void getStateInformation(juce::MemoryBlock& destData) override
    {
        juce::XmlElement xml("ADAC_STATE");
        for (size_t i = 0; i < bindings.size(); ++i)
            xml.setAttribute(juce::String(bindings[i].parameter->paramID), (double) bindings[i].parameter->getValue());
        copyXmlToBinary(xml, destData);
    }

    void setStateInformation(const void* data, int sizeInBytes) override
    {
        if (auto xml = getXmlFromBinary(data, sizeInBytes))
            for (auto& b : bindings)
                if (xml->hasAttribute(b.parameter->paramID))
                    b.parameter->setValueNotifyingHost((float) xml->getDoubleAttribute(b.parameter->paramID));
    }

private:
    struct Binding {
        juce::RangedAudioParameter* parameter;
        FAUSTFLOAT* zone;
    };

    explicit AdacProcessor(std::unique_ptr<dsp> dspInstance)
        : AudioProcessor(layoutFor(*dspInstance)), faust(std::move(dspInstance))
    {
        ControlCollector collector;
        faust->buildUserInterface(&collector);
        for (const auto& c : collector.controls) {
            juce::RangedAudioParameter* p;
            const juce::ParameterID id(c.address, 1);
            if (c.toggle) {
                p = new juce::AudioParameterBool(id, c.label, c.init >= 0.5f);
            } else {
                // keep FAUST's step only if the default lies on its grid: a snapped default would not be
                // the value the model was built for
                float step = c.step > 0.0f ? c.step : 0.0f;
                if (step > 0.0f) {
                    const double k = std::round(((double) c.init - c.min) / step);
                    if (std::abs(c.min + k * step - c.init) > 1e-6 * step) step = 0.0f;
                }
                p = new juce::AudioParameterFloat(id, c.label, juce::NormalisableRange<float>(c.min, c.max, step), c.init);
            }
            addParameter(p);
            bindings.push_back({p, c.zone});
        }
    }

    static BusesProperties layoutFor(dsp& d)
    {
        BusesProperties buses;
        if (d.getNumInputs() > 0)
            buses = buses.withInput("Input", juce::AudioChannelSet::canonicalChannelSet(d.getNumInputs()), true);
        return buses.withOutput("Output", juce::AudioChannelSet::canonicalChannelSet(d.getNumOutputs()), true);
    }

    void pushParameters()
    {
        for (auto& b : bindings)
            *b.zone = (FAUSTFLOAT) b.parameter->convertFrom0to1(b.parameter->getValue());
    }

    std::unique_ptr<dsp> faust;
    std::vector<Binding> bindings;
    juce::AudioBuffer<float> scratchIn, scratchOut;
    std::vector<FAUSTFLOAT*> inputs, outputs;

    JUCE_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR(AdacProcessor)
};

}  // namespace

juce::AudioProcessor* JUCE_CALLTYPE createPluginFilter() { return new AdacProcessor(); }
