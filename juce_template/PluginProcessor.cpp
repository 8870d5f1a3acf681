// adac JUCE plugin: a FAUST-generated DSP class as a juce::AudioProcessor.
//
// Model-independent: the DSP comes from adacCreateFaustDsp() (FaustDsp.cpp, the only translation
// unit that changes with the model), the identity from the CMake project (JucePlugin_* macros).
//
// * Every FAUST UI element (hslider, vslider, nentry, button, checkbox) becomes an automatable host
//   parameter. Its ID is the FAUST address built exactly like FAUST's MapUI (PathBuilder), e.g.
//   "/reverb/wet", so IDs are stable across rebuilds and match the addresses used by adac.render;
//   its name is the FAUST label, its range, step and default are FAUST's, a [unit:...] metadata
//   becomes the parameter's unit label. Bargraphs (outputs) and soundfiles are not exposed.
// * The audio thread never allocates: parameter values (atomics owned by JUCE) are copied into the
//   FAUST zones at the start of each block, and audio goes through scratch buffers sized in
//   prepareToPlay; a host block longer than announced is processed in chunks.
// * Bus layout: one main input bus with getNumInputs() channels (none for a generator) and one main
//   output bus with getNumOutputs() channels; other layouts are refused.
// * State: the parameters' plain values by ID, as XML (ADAC_STATE), restored by ID; unknown IDs are
//   ignored and missing ones keep their current values, so a retrained model with new controls
//   still loads old sessions.
#include <juce_audio_processors/juce_audio_processors.h>
#include <juce_audio_utils/juce_audio_utils.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "faust/gui/PathBuilder.h"
#include "faust/gui/UI.h"
#include "faust/gui/meta.h"
#include "FaustDsp.h"

static_assert(sizeof(FAUSTFLOAT) == sizeof(float), "the plugin exchanges float buffers with FAUST: build with FAUSTFLOAT=float");

namespace {

struct FaustControl {
    std::string address, label, unit;
    FAUSTFLOAT* zone;
    float init, min, max, step;
    bool toggle;
};

// Collects the FAUST UI elements with their full addresses, as MapUI names them.
class ControlCollector : public UI, public PathBuilder {
public:
    std::vector<FaustControl> controls;

    void openTabBox(const char* label) override { pushLabel(label); }
    void openHorizontalBox(const char* label) override { pushLabel(label); }
    void openVerticalBox(const char* label) override { pushLabel(label); }
    void closeBox() override { popLabel(); }
    void addButton(const char* label, FAUSTFLOAT* zone) override { add(label, zone, 0, 0, 1, 1, true); }
    void addCheckButton(const char* label, FAUSTFLOAT* zone) override { add(label, zone, 0, 0, 1, 1, true); }
    void addVerticalSlider(const char* l, FAUSTFLOAT* z, FAUSTFLOAT i, FAUSTFLOAT mn, FAUSTFLOAT mx, FAUSTFLOAT s) override { add(l, z, i, mn, mx, s, false); }
    void addHorizontalSlider(const char* l, FAUSTFLOAT* z, FAUSTFLOAT i, FAUSTFLOAT mn, FAUSTFLOAT mx, FAUSTFLOAT s) override { add(l, z, i, mn, mx, s, false); }
    void addNumEntry(const char* l, FAUSTFLOAT* z, FAUSTFLOAT i, FAUSTFLOAT mn, FAUSTFLOAT mx, FAUSTFLOAT s) override { add(l, z, i, mn, mx, s, false); }
    void addHorizontalBargraph(const char*, FAUSTFLOAT*, FAUSTFLOAT, FAUSTFLOAT) override {}
    void addVerticalBargraph(const char*, FAUSTFLOAT*, FAUSTFLOAT, FAUSTFLOAT) override {}
    void addSoundfile(const char*, const char*, Soundfile**) override {}
    void declare(FAUSTFLOAT* zone, const char* key, const char* value) override
    {
        if (zone != nullptr && key != nullptr && value != nullptr) metadata[zone][key] = value;
    }

private:
    std::map<FAUSTFLOAT*, std::map<std::string, std::string>> metadata;

    void add(const char* label, FAUSTFLOAT* zone, FAUSTFLOAT init, FAUSTFLOAT min, FAUSTFLOAT max, FAUSTFLOAT step, bool toggle)
    {
        auto& meta = metadata[zone];
        controls.push_back({buildPath(label), label, meta.count("unit") ? meta["unit"] : std::string(), zone,
                            (float) init, (float) min, (float) max, (float) step, toggle});
    }
};

// Global FAUST metadata (declare key "value";).
struct MetadataCollector : public Meta {
    std::map<std::string, std::string> values;
    void declare(const char* key, const char* value) override { values[key] = value; }
};

class AdacProcessor : public juce::AudioProcessor {
public:
    AdacProcessor() : AdacProcessor(adacCreateFaustDsp()) {}

    const juce::String getName() const override { return JucePlugin_Name; }
    bool acceptsMidi() const override { return false; }
    bool producesMidi() const override { return false; }
    bool isMidiEffect() const override { return false; }
    double getTailLengthSeconds() const override { return tailSeconds; }
    int getNumPrograms() override { return 1; }
    int getCurrentProgram() override { return 0; }
    void setCurrentProgram(int) override {}
    const juce::String getProgramName(int) override { return "Default"; }
    void changeProgramName(int, const juce::String&) override {}
    bool hasEditor() const override { return true; }
    juce::AudioProcessorEditor* createEditor() override { return new juce::GenericAudioProcessorEditor(*this); }

    bool isBusesLayoutSupported(const BusesLayout& layouts) const override
    {
        return layouts.getMainInputChannels() == numInputs && layouts.getMainOutputChannels() == numOutputs;
    }

    void prepareToPlay(double sampleRate, int samplesPerBlock) override
    {
        faust->init((int) std::lround(sampleRate));  // clears the state and resets the zones to their defaults...
        pushParameters();                             // ...so the host's values go back in
        maxBlock = juce::jmax(1, samplesPerBlock);
        scratchIn.setSize(juce::jmax(1, numInputs), maxBlock);
        scratchOut.setSize(juce::jmax(1, numOutputs), maxBlock);
        scratchIn.clear();
        scratchOut.clear();
        for (int c = 0; c < numInputs; ++c) inputs[(size_t) c] = scratchIn.getWritePointer(c);
        for (int c = 0; c < numOutputs; ++c) outputs[(size_t) c] = scratchOut.getWritePointer(c);
    }

    void releaseResources() override {}

    void reset() override { faust->instanceClear(); }

    using AudioProcessor::processBlock;  // the double-precision overload stays JUCE's (unsupported)

    void processBlock(juce::AudioBuffer<float>& buffer, juce::MidiBuffer&) override
    {
        juce::ScopedNoDenormals noDenormals;
        pushParameters();
        const int total = buffer.getNumSamples();
        const int channels = buffer.getNumChannels();
        for (int start = 0; start < total; start += maxBlock) {
            const int len = juce::jmin(maxBlock, total - start);
            // FAUST does not compute in place: inputs are copied out first
            for (int c = 0; c < numInputs; ++c) {
                if (c < channels) scratchIn.copyFrom(c, 0, buffer, c, start, len);
                else scratchIn.clear(c, 0, len);
            }
            faust->compute(len, inputs.data(), outputs.data());
            for (int c = 0; c < juce::jmin(numOutputs, channels); ++c)
                buffer.copyFrom(c, start, scratchOut, c, 0, len);
        }
        for (int c = numOutputs; c < channels; ++c) buffer.clear(c, 0, total);
    }

    void getStateInformation(juce::MemoryBlock& destData) override
    {
        juce::XmlElement xml("ADAC_STATE");
        xml.setAttribute("version", 1);
        for (const auto& b : bindings) {
            auto* child = xml.createNewChildElement("PARAM");
            child->setAttribute("id", b.parameter->paramID);
            child->setAttribute("value", (double) b.parameter->convertFrom0to1(b.parameter->getValue()));
        }
        copyXmlToBinary(xml, destData);
    }

    void setStateInformation(const void* data, int sizeInBytes) override
    {
        auto xml = getXmlFromBinary(data, sizeInBytes);
        if (xml == nullptr || !xml->hasTagName("ADAC_STATE")) return;
        for (auto* child : xml->getChildWithTagNameIterator("PARAM")) {
            const auto id = child->getStringAttribute("id");
            for (auto& b : bindings) {
                if (b.parameter->paramID == id) {
                    const auto plain = (float) child->getDoubleAttribute("value", b.parameter->convertFrom0to1(b.parameter->getValue()));
                    b.parameter->setValueNotifyingHost(b.parameter->convertTo0to1(plain));
                }
            }
        }
    }

private:
    struct Binding {
        juce::RangedAudioParameter* parameter;
        FAUSTFLOAT* zone;
    };

    explicit AdacProcessor(std::unique_ptr<dsp> instance)
        : AudioProcessor(layoutFor(*instance)), faust(std::move(instance)),
          numInputs(faust->getNumInputs()), numOutputs(faust->getNumOutputs()),
          inputs((size_t) numInputs, nullptr), outputs((size_t) numOutputs, nullptr)
    {
        MetadataCollector meta;
        faust->metadata(&meta);
        if (meta.values.count("tail_seconds")) {
            const double t = std::atof(meta.values["tail_seconds"].c_str());
            if (std::isfinite(t) && t >= 0.0) tailSeconds = t;
        }

        ControlCollector collector;
        faust->buildUserInterface(&collector);
        std::set<std::string> ids;
        for (const auto& c : collector.controls) {
            std::string id = c.address;  // FAUST addresses are unique in practice; never let a clash reach the host
            for (int k = 2; ids.count(id); ++k) id = c.address + "#" + std::to_string(k);
            ids.insert(id);
            const juce::String name = c.label.empty() ? juce::String(id) : juce::String(c.label);
            juce::RangedAudioParameter* p;
            if (c.toggle) {
                p = new juce::AudioParameterBool(juce::ParameterID(id, 1), name, c.init >= 0.5f);
            } else {
                float min = c.min, max = c.max;
                if (!(max > min)) max = min + 1.0f;  // degenerate FAUST range: JUCE needs max > min
                // FAUST's step is kept only if JUCE's snapping leaves the default where FAUST has it:
                // a default moved to the grid would not be the value the model was designed for
                float step = c.step > 0.0f && c.step < max - min ? c.step : 0.0f;
                if (step > 0.0f) {
                    const float snapped = juce::NormalisableRange<float>(min, max, step).snapToLegalValue(c.init);
                    if (std::abs(snapped - c.init) > 1e-4f * step) step = 0.0f;
                }
                p = new juce::AudioParameterFloat(juce::ParameterID(id, 1), name,
                                                  juce::NormalisableRange<float>(min, max, step),
                                                  juce::jlimit(min, max, c.init),
                                                  juce::AudioParameterFloatAttributes().withLabel(c.unit));
            }
            addParameter(p);
            bindings.push_back({p, c.zone});
        }
        // a usable state even if a host processes before prepareToPlay
        prepareToPlay(44100.0, 512);
    }

    static BusesProperties layoutFor(dsp& d)
    {
        BusesProperties buses;
        if (d.getNumInputs() > 0)
            buses = buses.withInput("Input", juce::AudioChannelSet::canonicalChannelSet(d.getNumInputs()), true);
        if (d.getNumOutputs() > 0)
            buses = buses.withOutput("Output", juce::AudioChannelSet::canonicalChannelSet(d.getNumOutputs()), true);
        return buses;
    }

    void pushParameters() noexcept
    {
        for (auto& b : bindings)
            *b.zone = (FAUSTFLOAT) b.parameter->convertFrom0to1(b.parameter->getValue());
    }

    std::unique_ptr<dsp> faust;
    const int numInputs, numOutputs;
    double tailSeconds = 10.0;  // FAUST metadata `declare tail_seconds "...";` overrides it
    std::vector<Binding> bindings;
    int maxBlock = 1;
    juce::AudioBuffer<float> scratchIn, scratchOut;
    std::vector<FAUSTFLOAT*> inputs, outputs;

    JUCE_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR(AdacProcessor)
};

}  // namespace

juce::AudioProcessor* JUCE_CALLTYPE createPluginFilter() { return new AdacProcessor(); }
