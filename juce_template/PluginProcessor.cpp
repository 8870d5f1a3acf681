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
// * Sample rate (adacSampleRates, the manifest's sample_rate; docs/sample_rate.md), chosen in prepareToPlay,
//   off the audio thread (a host may change its rate mid-session):
//   - relowered: the class of the model lowered again for the host's rate (zero latency); a rate with no
//     certified lowering is refused: the plugin passes its input through (bypass), says so in its editor
//     and in JUCE's log.
//   - resample: the model's class at its own rate; the host's audio goes through libsamplerate
//     (SRC_SINC_BEST_QUALITY) to the model's rate and back, time-aligned converters behind a FIFO primed with
//     the latency reported to the host (setLatencySamples; silence already through the converters). At the
//     model's rate there is no resampler.
//   Every buffer and converter is made in prepareToPlay: processBlock neither allocates nor locks.
#include <juce_audio_processors/juce_audio_processors.h>
#include <juce_audio_utils/juce_audio_utils.h>

#include <samplerate.h>

#include <atomic>
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

// One libsamplerate converter (every channel interleaved), made off the audio thread.
struct SrcDeleter {
    void operator()(SRC_STATE* state) const { src_delete(state); }
};
using SrcState = std::unique_ptr<SRC_STATE, SrcDeleter>;

SrcState makeConverter(int channels)
{
    int error = 0;
    SrcState state(src_new(SRC_SINC_BEST_QUALITY, juce::jmax(1, channels), &error));
    if (state == nullptr) juce::Logger::writeToLog(juce::String("adac: libsamplerate: ") + src_strerror(error));
    return state;
}

// Output frames one libsamplerate converter holds back at ``ratio`` (output/input rate): half its filter,
// 143 frames of the lower rate for SRC_SINC_BEST_QUALITY (340239 coefficients / 2381 per frame), so
// 143 * max(1, ratio) output frames (measured: 143 at 0.5 and 0.919, 157 at 1.088, 288 at 2); 160 keeps a
// margin for the fractional phase. Its output is time-aligned with its input: it only comes late.
int heldBack(double ratio) { return (int) std::ceil(160.0 * juce::jmax(1.0, ratio)); }

class AdacProcessor : public juce::AudioProcessor {
public:
    AdacProcessor() : AdacProcessor(adacCreateFaustDsp(adacSampleRates.modelRate)) {}

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
    juce::AudioProcessorEditor* createEditor() override;

    // What the plugin does at the host's rate, for the editor and the log (set in prepareToPlay).
    juce::String rateStatus() const
    {
        const juce::SpinLock::ScopedLockType lock(statusLock);
        return status;
    }
    bool isRefusingRate() const noexcept { return refused.load(); }

    bool isBusesLayoutSupported(const BusesLayout& layouts) const override
    {
        return layouts.getMainInputChannels() == numInputs && layouts.getMainOutputChannels() == numOutputs;
    }

    void prepareToPlay(double sampleRate, int samplesPerBlock) override
    {
        const int hostRate = (int) std::lround(sampleRate);
        const auto mode = adacSampleRates.mode;
        int dspRate = hostRate;
        refused = false;
        juce::String message;
        if (mode == AdacSampleRates::Mode::relowered) {
            if (hostRate != faustRate) {
                if (auto lowered = adacCreateFaustDsp(hostRate)) {
                    useDsp(std::move(lowered));
                    faustRate = hostRate;
                }
            }
            refused = faustRate != hostRate;
            message = refused ? "refused: no certified lowering of the model for " + juce::String(hostRate)
                                    + " Hz (accepted: " + acceptedRates() + " Hz); the input passes through"
                              : "the model lowered for " + juce::String(hostRate) + " Hz (zero latency)";
        } else if (mode == AdacSampleRates::Mode::resample) {
            dspRate = adacSampleRates.modelRate;
            message = hostRate == dspRate ? "the model at its own rate, " + juce::String(dspRate) + " Hz"
                                          : "the model at " + juce::String(dspRate) + " Hz, resampled from and to "
                                                + juce::String(hostRate) + " Hz";
        } else {
            message = "the model's code at " + juce::String(hostRate) + " Hz";
        }
        faust->init(dspRate);  // clears the state and resets the zones to their defaults...
        pushParameters();      // ...so the host's values go back in
        maxBlock = juce::jmax(1, samplesPerBlock);
        prepareResampling(hostRate, dspRate);
        const int modelBlock = resampling ? (int) std::ceil(maxBlock * toModel) + 2 * heldBack(toModel) + 8 : maxBlock;
        scratchIn.setSize(juce::jmax(1, numInputs), modelBlock);
        scratchOut.setSize(juce::jmax(1, numOutputs), modelBlock);
        scratchIn.clear();
        scratchOut.clear();
        for (int c = 0; c < numInputs; ++c) inputs[(size_t) c] = scratchIn.getWritePointer(c);
        for (int c = 0; c < numOutputs; ++c) outputs[(size_t) c] = scratchOut.getWritePointer(c);
        {
            const juce::SpinLock::ScopedLockType lock(statusLock);
            status = message;
        }
        if (refused)  // the editor always shows the status; the log only what a user must act on
            juce::Logger::writeToLog(juce::String("adac: ") + JucePlugin_Name + ": " + message);
    }

    void releaseResources() override {}

    void reset() override
    {
        faust->instanceClear();
        if (resampling) {
            src_reset(up.get());
            src_reset(down.get());
            primeConverters();
        }
    }

    using AudioProcessor::processBlock;  // the double-precision overload stays JUCE's (unsupported)

    void processBlock(juce::AudioBuffer<float>& buffer, juce::MidiBuffer&) override
    {
        juce::ScopedNoDenormals noDenormals;
        const int total = buffer.getNumSamples();
        const int channels = buffer.getNumChannels();
        if (refused.load()) {  // bypass: the input passes through, outputs without an input are silent
            for (int c = juce::jmin(numInputs, numOutputs); c < channels; ++c) buffer.clear(c, 0, total);
            return;
        }
        pushParameters();
        if (resampling) {
            for (int start = 0; start < total; start += maxBlock)
                processResampled(buffer, start, juce::jmin(maxBlock, total - start));
            for (int c = numOutputs; c < channels; ++c) buffer.clear(c, 0, total);
            return;
        }
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
          inputs((size_t) numInputs, nullptr), outputs((size_t) numOutputs, nullptr),
          faustRate(adacSampleRates.modelRate)
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
        prepareToPlay(adacSampleRates.modelRate > 0 ? (double) adacSampleRates.modelRate : 44100.0, 512);
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

    static juce::String acceptedRates()
    {
        juce::StringArray rates;
        for (int i = 0; i < adacSampleRates.count; ++i) rates.add(juce::String(adacSampleRates.rates[i]));
        return rates.joinIntoString(", ");
    }

    // Another rate's class in place of the current one: the parameters keep their values, bound to its zones
    // (every lowering of a model has the same controls, in the same order).
    void useDsp(std::unique_ptr<dsp> next)
    {
        ControlCollector collector;
        next->buildUserInterface(&collector);
        jassert(collector.controls.size() == bindings.size());
        for (size_t i = 0; i < bindings.size() && i < collector.controls.size(); ++i)
            bindings[i].zone = collector.controls[i].zone;
        faust = std::move(next);
    }

    // Converters, FIFO and interleaved buffers for a host rate other than the model's (none at its rate).
    void prepareResampling(int hostRate, int dspRate)
    {
        resampling = adacSampleRates.mode == AdacSampleRates::Mode::resample && hostRate != dspRate;
        latency = 0;
        if (resampling) {
            toModel = (double) dspRate / hostRate;
            up = makeConverter(numInputs);
            down = makeConverter(numOutputs);
            resampling = up != nullptr && down != nullptr;
            latency = (int) std::ceil(heldBack(toModel) / toModel) + heldBack(1.0 / toModel) + 4;
            const int modelFrames = (int) std::ceil(maxBlock * toModel) + 2 * heldBack(toModel) + 8;
            hostIn.assign((size_t) (maxBlock * juce::jmax(1, numInputs)), 0.0f);
            modelIn.assign((size_t) (modelFrames * juce::jmax(1, numInputs)), 0.0f);
            modelOut.assign((size_t) (modelFrames * juce::jmax(1, numOutputs)), 0.0f);
            fifoFrames = latency + maxBlock + (int) std::ceil(modelFrames / toModel) + 2 * heldBack(1.0 / toModel) + 8;
            fifo.assign((size_t) (fifoFrames * juce::jmax(1, numOutputs)), 0.0f);
            primeConverters();
        } else {
            up.reset();
            down.reset();
        }
        setLatencySamples(resampling ? latency : 0);
    }

    // The latency the host is told, as silence already through the converters: a converter's first frames
    // after src_new/src_reset are placed a fraction of a frame off (measured: 2 % of the peak at 0.3 x Nyquist
    // for an impulse on the first frame, none after 100 frames of silence). The model's part of that silence
    // is silence (its state is clear), so only the converters run.
    void primeConverters() noexcept
    {
        const int ins = juce::jmax(1, numInputs), outs = juce::jmax(1, numOutputs);
        std::fill(hostIn.begin(), hostIn.end(), 0.0f);
        std::fill(modelOut.begin(), modelOut.end(), 0.0f);
        fifoStart = 0;
        fifoCount = 0;
        for (int done = 0; done < latency; done += maxBlock) {
            SRC_DATA toDsp{};
            toDsp.data_in = hostIn.data();
            toDsp.input_frames = juce::jmin(maxBlock, latency - done);
            toDsp.data_out = modelIn.data();
            toDsp.output_frames = (long) (modelIn.size() / (size_t) ins);
            toDsp.src_ratio = toModel;
            src_process(up.get(), &toDsp);
            SRC_DATA toHost{};
            toHost.data_in = modelOut.data();
            toHost.input_frames = toDsp.output_frames_gen;
            toHost.data_out = fifo.data() + (size_t) fifoCount * outs;
            toHost.output_frames = fifoFrames - fifoCount;
            toHost.src_ratio = 1.0 / toModel;
            src_process(down.get(), &toHost);
            fifoCount += (int) toHost.output_frames_gen;
        }
    }

    // One chunk (at most maxBlock frames) through host rate -> model rate -> host rate.
    void processResampled(juce::AudioBuffer<float>& buffer, int start, int len) noexcept
    {
        const int ins = juce::jmax(1, numInputs), outs = juce::jmax(1, numOutputs);
        const int channels = buffer.getNumChannels();
        for (int i = 0; i < len; ++i)
            for (int c = 0; c < numInputs; ++c)
                hostIn[(size_t) (i * ins + c)] = c < channels ? buffer.getSample(c, start + i) : 0.0f;
        SRC_DATA toDsp{};
        toDsp.data_in = hostIn.data();
        toDsp.input_frames = len;
        toDsp.data_out = modelIn.data();
        toDsp.output_frames = (long) (modelIn.size() / (size_t) ins);
        toDsp.src_ratio = toModel;
        src_process(up.get(), &toDsp);
        const int frames = (int) toDsp.output_frames_gen;
        for (int c = 0; c < numInputs; ++c)
            for (int i = 0; i < frames; ++i) inputs[(size_t) c][i] = modelIn[(size_t) (i * ins + c)];
        if (frames > 0) faust->compute(frames, inputs.data(), outputs.data());
        for (int c = 0; c < numOutputs; ++c)
            for (int i = 0; i < frames; ++i) modelOut[(size_t) (i * outs + c)] = outputs[(size_t) c][i];
        // the FIFO is linearised before each write (the host frames read last time are dropped)
        if (fifoStart > 0) {
            std::copy(fifo.begin() + (long) fifoStart * outs, fifo.begin() + (long) (fifoStart + fifoCount) * outs, fifo.begin());
            fifoStart = 0;
        }
        SRC_DATA toHost{};
        toHost.data_in = modelOut.data();
        toHost.input_frames = frames;
        toHost.data_out = fifo.data() + (size_t) fifoCount * outs;
        toHost.output_frames = fifoFrames - fifoCount;
        toHost.src_ratio = 1.0 / toModel;
        src_process(down.get(), &toHost);
        fifoCount += (int) toHost.output_frames_gen;
        const int ready = juce::jmin(len, fifoCount);
        for (int c = 0; c < juce::jmin(numOutputs, channels); ++c) {
            for (int i = 0; i < ready; ++i) buffer.setSample(c, start + i, fifo[(size_t) ((fifoStart + i) * outs + c)]);
            for (int i = ready; i < len; ++i) buffer.setSample(c, start + i, 0.0f);  // never: the latency covers it
        }
        fifoStart += ready;
        fifoCount -= ready;
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
    int faustRate;  // the rate the current class is lowered for (relowered mode)
    std::atomic<bool> refused{false};
    mutable juce::SpinLock statusLock;
    juce::String status;
    // resample mode
    bool resampling = false;
    double toModel = 1.0;  // model rate / host rate
    SrcState up, down;
    std::vector<float> hostIn, modelIn, modelOut, fifo;
    int fifoFrames = 0, fifoStart = 0, fifoCount = 0, latency = 0;

    JUCE_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR(AdacProcessor)
};

// The generic parameter editor under a line that says how the plugin follows the host's rate.
class AdacEditor : public juce::AudioProcessorEditor, private juce::Timer {
public:
    explicit AdacEditor(AdacProcessor& p) : AudioProcessorEditor(p), processor(p), parameters(p)
    {
        addAndMakeVisible(rateLabel);
        addAndMakeVisible(parameters);
        refresh();
        setSize(juce::jmax(400, parameters.getWidth()), parameters.getHeight() + labelHeight);
        startTimerHz(4);
    }

    void resized() override
    {
        auto area = getLocalBounds();
        rateLabel.setBounds(area.removeFromTop(labelHeight).reduced(6, 2));
        parameters.setBounds(area);
    }

private:
    static constexpr int labelHeight = 28;
    AdacProcessor& processor;
    juce::GenericAudioProcessorEditor parameters;
    juce::Label rateLabel;

    void refresh()
    {
        rateLabel.setText(processor.rateStatus(), juce::dontSendNotification);
        rateLabel.setColour(juce::Label::textColourId, processor.isRefusingRate() ? juce::Colours::orange : juce::Colours::lightgrey);
    }
    void timerCallback() override { refresh(); }
};

juce::AudioProcessorEditor* AdacProcessor::createEditor() { return new AdacEditor(*this); }

}  // namespace

juce::AudioProcessor* JUCE_CALLTYPE createPluginFilter() { return new AdacProcessor(); }
