// adac hot-reload plugin: plays the model a training script publishes (adac.HotReload: an IR document the adac
// runtime plays, no compiler) or a hand-written FAUST file (compiled with libfaust).
// The watched path comes from the environment (ADAC_HOTRELOAD_PATH) or the saved state; the default is
// ~/.local/share/adac/live.dsp (the content says what it is, not the name). The engine's status (reloads, tier,
// last error) is written next to it, to <path>.status.json. FAUST code is compiled tiered by default (libfaust's
// interpreter build plays as soon as it compiles, the LLVM build replaces it when ready);
// ADAC_HOTRELOAD_BACKEND=llvm or =interpreter selects one backend. Buses are stereo; the running DSP's channels
// map onto them (a mono input takes the left channel, a mono output feeds both). The macro-controls' stable
// addresses (/adac/rt60, /adac/dry_wet, /adac/pre_delay) are host parameters, so their positions survive every
// reload; the model clamps them to its own ranges. "audition" (live / pinned / bypass) and "pinned step" choose
// what plays: the live model, the newest published model whose step is at most "pinned step", or the dry input
// (crossfaded).
//
// Real time: processBlock takes no lock, allocates nothing and makes no system call (it is bracketed by
// adac::RtScope for hosts/rtcheck): host parameter values go to the engine's parameter slots (atomics;
// the slots are resolved in prepareToPlay), the audition choice to an atomic request the engine's
// watcher thread applies, and any host block size is processed in pieces of the prepared size.
#include <juce_audio_processors/juce_audio_processors.h>
#include <juce_audio_utils/juce_audio_utils.h>

#include <cmath>
#include <cstdlib>
#include <memory>

#include "../rtcheck/rtcheck.h"
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
constexpr int kControls = (int) (sizeof controls / sizeof controls[0]);

class HotReloadProcessor : public juce::AudioProcessor {
public:
    HotReloadProcessor()
        : AudioProcessor(BusesProperties().withInput("Input", juce::AudioChannelSet::stereo(), true)
                                          .withOutput("Output", juce::AudioChannelSet::stereo(), true)),
          watchPath(defaultPath())
    {
        for (int i = 0; i < kControls; ++i) {
            const auto& c = controls[i];
            params[i] = new juce::AudioParameterFloat(juce::ParameterID(c.id, 1), c.name, c.min, c.max, c.init);
            addParameter(params[i]);
        }
        audition = new juce::AudioParameterChoice(juce::ParameterID("audition", 1), "audition", {"live", "pinned", "bypass"}, 0);
        pinnedStep = new juce::AudioParameterInt(juce::ParameterID("pinned_step", 1), "pinned step", 0, 1000000, 0);
        addParameter(audition);
        addParameter(pinnedStep);
    }

    const juce::String getName() const override { return "AdacHotReload"; }
    bool acceptsMidi() const override { return false; }
    bool producesMidi() const override { return false; }
    bool isMidiEffect() const override { return false; }
    // `declare tail_seconds` of the live DSP (10 s when it declares none); no latency: the engine adds none
    double getTailLengthSeconds() const override { return engine ? engine->tailSeconds() : 10.0; }
    int getNumPrograms() override { return 1; }
    int getCurrentProgram() override { return 0; }
    void setCurrentProgram(int) override {}
    const juce::String getProgramName(int) override { return "live"; }
    void changeProgramName(int, const juce::String&) override {}
    bool hasEditor() const override { return true; }
    juce::AudioProcessorEditor* createEditor() override { return new juce::GenericAudioProcessorEditor(*this); }

    // Off the audio thread, with processing stopped (JUCE's contract): a first call starts the engine; a
    // later one (new rate or block size) re-initialises the running DSPs without compiling anything.
    void prepareToPlay(double sampleRate, int samplesPerBlock) override
    {
        block = juce::jmax(1, samplesPerBlock);
        rate = sampleRate;
        setLatencySamples(0);
        scratchIn.setSize(kMaxChannels, block);
        scratchOut.setSize(kMaxChannels, block);
        if (!engine) {
            startEngine();
            engine->waitForReloads(1, 2000);  // give a published file a moment to come up before audio starts
        } else {
            engine->prepare((int) std::lround(rate), block, crossfade());
        }
    }

    void reset() override
    {
        if (engine) engine->prepare((int) std::lround(rate), block, crossfade());  // clears every DSP's state
    }

    void releaseResources() override {}  // the engine (and its compiled programs) stay for the next prepareToPlay

    void processBlock(juce::AudioBuffer<float>& buffer, juce::MidiBuffer&) override
    {
        adac::RtScope audioThread;
        juce::ScopedNoDenormals noDenormals;
        const int total = buffer.getNumSamples(), channels = buffer.getNumChannels();
        if (!engine) {
            buffer.clear();
            return;
        }
        for (int i = 0; i < kControls; ++i) {
            const float v = params[i]->get();
            if (v != pushed[i]) {
                engine->setSlot(slots[i], v);
                pushed[i] = v;
            }
        }
        const int choice = audition->getIndex(), step = pinnedStep->get();
        if (choice != pushedAudition || (choice == 1 && step != pushedStep)) {
            engine->requestAudition(choice == 1 ? adac::Audition::Pinned : choice == 2 ? adac::Audition::Bypass : adac::Audition::Live,
                                    step, true);
            pushedAudition = choice;
            pushedStep = step;
        }
        const int nin = engine->numInputs(), nout = engine->numOutputs();
        if (nout == 0 || nin > kMaxChannels || nout > kMaxChannels || channels == 0) {
            buffer.clear();
            return;
        }
        float* in[kMaxChannels];
        float* out[kMaxChannels];
        for (int c = 0; c < nin; ++c) in[c] = scratchIn.getWritePointer(c);
        for (int c = 0; c < nout; ++c) out[c] = scratchOut.getWritePointer(c);
        for (int start = 0; start < total; start += block) {  // any host block size, in prepared pieces
            const int n = juce::jmin(block, total - start);
            for (int c = 0; c < nin; ++c) scratchIn.copyFrom(c, 0, buffer, juce::jmin(c, channels - 1), start, n);
            engine->process(n, nin, in, nout, out);
            for (int c = 0; c < channels; ++c) buffer.copyFrom(c, start, scratchOut, juce::jmin(c, nout - 1), 0, n);
        }
    }

    void getStateInformation(juce::MemoryBlock& dest) override
    {
        juce::XmlElement xml("ADAC_HOTRELOAD");
        xml.setAttribute("path", watchPath);
        for (auto* p : params) xml.setAttribute(juce::String(p->paramID).replace("/", "_"), (double) p->get());
        xml.setAttribute("audition", audition->getIndex());
        xml.setAttribute("pinned_step", pinnedStep->get());
        copyXmlToBinary(xml, dest);
    }

    void setStateInformation(const void* data, int size) override
    {
        if (auto xml = getXmlFromBinary(data, size)) {
            const auto saved = xml->getStringAttribute("path", watchPath);
            if (std::getenv("ADAC_HOTRELOAD_PATH") == nullptr && saved != watchPath) {  // the environment wins
                watchPath = saved;
                if (engine) {  // already playing: watch the restored path from now on
                    suspendProcessing(true);  // waits for a running processBlock: the old engine is not in use
                    startEngine();
                    suspendProcessing(false);
                }
            }
            for (auto* p : params) {
                const auto key = juce::String(p->paramID).replace("/", "_");
                if (xml->hasAttribute(key)) *p = (float) xml->getDoubleAttribute(key);
            }
            if (xml->hasAttribute("audition")) *audition = juce::jlimit(0, 2, xml->getIntAttribute("audition"));
            if (xml->hasAttribute("pinned_step")) *pinnedStep = xml->getIntAttribute("pinned_step");
        }
    }

private:
    int crossfade() const { return juce::jmax(1, (int) (0.01 * rate)); }  // 10 ms

    void startEngine()
    {
        engine.reset();
        adac::EngineOptions options;
        const juce::String backend(std::getenv("ADAC_HOTRELOAD_BACKEND") ? std::getenv("ADAC_HOTRELOAD_BACKEND") : "tiered");
        options.backend = backend == "interpreter" ? adac::Backend::Interpreter : backend == "llvm" ? adac::Backend::LLVM : adac::Backend::Tiered;
        options.statusPath = watchPath.toStdString() + ".status.json";
        options.crossfadeSamples = crossfade();
        engine = std::make_unique<adac::HotReloadEngine>(watchPath.toStdString(), (int) std::lround(rate), block, options);
        for (int i = 0; i < kControls; ++i) {
            slots[i] = engine->slot(controls[i].id);
            pushed[i] = std::nanf("");  // push every host parameter to the new engine
        }
        pushedAudition = -1;
    }

    juce::String watchPath;
    std::unique_ptr<adac::HotReloadEngine> engine;
    juce::AudioParameterFloat* params[kControls] = {};
    juce::AudioParameterChoice* audition = nullptr;
    juce::AudioParameterInt* pinnedStep = nullptr;
    int slots[kControls] = {};
    float pushed[kControls] = {};
    int pushedAudition = -1, pushedStep = -1;
    juce::AudioBuffer<float> scratchIn, scratchOut;
    int block = 512;
    double rate = 48000;
};

}  // namespace

juce::AudioProcessor* JUCE_CALLTYPE createPluginFilter() { return new HotReloadProcessor(); }
