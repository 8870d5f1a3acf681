// adac hot-reload plugin: plays the FAUST file a training script publishes (adac.HotReload).
// The watched path comes from the environment (ADAC_HOTRELOAD_PATH) or the saved state; the
// default is ~/.local/share/adac/live.dsp. The engine's status (reloads, last error) is written
// next to it, to <path>.status.json. ADAC_HOTRELOAD_BACKEND=interpreter selects libfaust's
// interpreter (compiles faster, renders 10-30x slower) instead of LLVM. Buses are stereo; the running DSP's channels map onto
// them (a mono input takes the left channel, a mono output feeds both). The macro-controls'
// stable addresses (/adac/rt60, /adac/dry_wet, /adac/pre_delay) are host parameters, so their
// positions survive every reload; the FAUST code clamps them to its own ranges.
#include <juce_audio_processors/juce_audio_processors.h>
#include <juce_audio_utils/juce_audio_utils.h>

#include <cstdlib>
#include <memory>

#include "HotReloadEngine.h"

namespace {

juce::String defaultPath()
{
    if (const char* env = std::getenv("ADAC_HOTRELOAD_PATH")) return env;
    return juce::File::getSpecialLocation(juce::File::userHomeDirectory).getChildFile(".local/share/adac/live.dsp").getFullPathName();
}

constexpr int kMaxChannels = 64;  // a DSP with more inputs or outputs plays silence

struct Control { const char* id; const char* name; float min, max, init; };
const Control controls[] = {
    {"/adac/rt60", "rt60 (s)", 0.05f, 20.0f, 1.0f},
    {"/adac/dry_wet", "dry_wet", 0.0f, 1.0f, 1.0f},
    {"/adac/pre_delay", "pre_delay (ms)", 0.0f, 500.0f, 0.0f},
};

class HotReloadProcessor : public juce::AudioProcessor {
public:
    HotReloadProcessor()
        : AudioProcessor(BusesProperties().withInput("Input", juce::AudioChannelSet::stereo(), true)
                                          .withOutput("Output", juce::AudioChannelSet::stereo(), true)),
          watchPath(defaultPath())
    {
        for (const auto& c : controls) {
            auto* p = new juce::AudioParameterFloat(juce::ParameterID(c.id, 1), c.name, c.min, c.max, c.init);
            addParameter(p);
            params.push_back(p);
        }
    }

    const juce::String getName() const override { return "AdacHotReload"; }
    bool acceptsMidi() const override { return false; }
    bool producesMidi() const override { return false; }
    bool isMidiEffect() const override { return false; }
    double getTailLengthSeconds() const override { return 10.0; }
    int getNumPrograms() override { return 1; }
    int getCurrentProgram() override { return 0; }
    void setCurrentProgram(int) override {}
    const juce::String getProgramName(int) override { return "live"; }
    void changeProgramName(int, const juce::String&) override {}
    bool hasEditor() const override { return true; }
    juce::AudioProcessorEditor* createEditor() override { return new juce::GenericAudioProcessorEditor(*this); }

    void prepareToPlay(double sampleRate, int samplesPerBlock) override
    {
        block = juce::jmax(1, samplesPerBlock);
        rate = sampleRate;
        startEngine();
        engine->waitForReloads(1, 2000);  // give a published file a moment to come up before audio starts
        scratchIn.setSize(kMaxChannels, block);
        scratchOut.setSize(kMaxChannels, block);
        pushed.assign(params.size(), -1.0f);
    }

    void startEngine()
    {
        engine.reset();
        adac::EngineOptions options;
        const char* backend = std::getenv("ADAC_HOTRELOAD_BACKEND");
        options.backend = backend && juce::String(backend) == "interpreter" ? adac::Backend::Interpreter : adac::Backend::LLVM;
        options.statusPath = watchPath.toStdString() + ".status.json";
        options.crossfadeSamples = juce::jmax(1, (int) (0.01 * rate));  // 10 ms
        engine = std::make_unique<adac::HotReloadEngine>(watchPath.toStdString(), (int) rate, block, options);
        pushed.assign(params.size(), -1.0f);  // push every host parameter to the new engine
    }

    void releaseResources() override { engine.reset(); }

    void processBlock(juce::AudioBuffer<float>& buffer, juce::MidiBuffer&) override
    {
        juce::ScopedNoDenormals noDenormals;
        const int n = buffer.getNumSamples();
        if (!engine || n > block) { buffer.clear(); return; }
        for (size_t i = 0; i < params.size(); ++i) {
            const float v = params[i]->get();
            if (v != pushed[i]) { engine->setParameter(controls[i].id, v); pushed[i] = v; }
        }
        const int nin = engine->numInputs(), nout = engine->numOutputs();
        if (nout == 0 || nin > kMaxChannels || nout > kMaxChannels) { buffer.clear(); return; }
        float* in[kMaxChannels]; float* out[kMaxChannels];
        for (int c = 0; c < nin; ++c) {
            scratchIn.copyFrom(c, 0, buffer, juce::jmin(c, buffer.getNumChannels() - 1), 0, n);
            in[c] = scratchIn.getWritePointer(c);
        }
        for (int c = 0; c < nout; ++c) out[c] = scratchOut.getWritePointer(c);
        engine->process(n, in, out);
        for (int c = 0; c < buffer.getNumChannels(); ++c) buffer.copyFrom(c, 0, scratchOut, juce::jmin(c, nout - 1), 0, n);
    }

    void getStateInformation(juce::MemoryBlock& dest) override
    {
        juce::XmlElement xml("ADAC_HOTRELOAD");
        xml.setAttribute("path", watchPath);
        for (auto* p : params) xml.setAttribute(juce::String(p->paramID).replace("/", "_"), (double) p->get());
        copyXmlToBinary(xml, dest);
    }

    void setStateInformation(const void* data, int size) override
    {
        if (auto xml = getXmlFromBinary(data, size)) {
            const auto saved = xml->getStringAttribute("path", watchPath);
            if (std::getenv("ADAC_HOTRELOAD_PATH") == nullptr && saved != watchPath) {  // the environment wins
                watchPath = saved;
                if (engine) {  // already playing: watch the restored path from now on
                    suspendProcessing(true);
                    startEngine();
                    suspendProcessing(false);
                }
            }
            for (auto* p : params) {
                const auto key = juce::String(p->paramID).replace("/", "_");
                if (xml->hasAttribute(key)) *p = (float) xml->getDoubleAttribute(key);
            }
        }
    }

private:
    juce::String watchPath;
    std::unique_ptr<adac::HotReloadEngine> engine;
    std::vector<juce::AudioParameterFloat*> params;
    std::vector<float> pushed;
    juce::AudioBuffer<float> scratchIn, scratchOut;
    int block = 512;
    double rate = 48000;
};

}  // namespace

juce::AudioProcessor* JUCE_CALLTYPE createPluginFilter() { return new HotReloadProcessor(); }
