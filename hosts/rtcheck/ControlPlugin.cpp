// AdacRtCheckControl: the negative control of the real-time test. A stereo gain plugin whose processBlock
// does, on every block, what ADAC_RTCHECK_VIOLATE (read once, in the constructor) names: "allocate"
// (operator new + delete), "lock" (a std::mutex), "syscall" (write to /dev/null), or nothing. Loaded
// through the test host like any plugin, it shows that the interposer catches each kind of violation
// made inside a plugin's audio path, and that a clean plugin counts zero.
#include <juce_audio_processors/juce_audio_processors.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <vector>

namespace {

class ControlProcessor : public juce::AudioProcessor {
public:
    ControlProcessor()
        : AudioProcessor(BusesProperties().withInput("Input", juce::AudioChannelSet::stereo(), true)
                                          .withOutput("Output", juce::AudioChannelSet::stereo(), true))
    {
        const char* what = std::getenv("ADAC_RTCHECK_VIOLATE");
        violation = what ? what : "";
        devNull = ::open("/dev/null", O_WRONLY);
        addParameter(gain = new juce::AudioParameterFloat(juce::ParameterID("gain", 1), "gain", 0.0f, 1.0f, 0.5f));
    }
    ~ControlProcessor() override { ::close(devNull); }

    void processBlock(juce::AudioBuffer<float>& buffer, juce::MidiBuffer&) override
    {
        if (violation == "allocate") {
            auto* p = new std::vector<float>(64);
            asm volatile("" : : "r"(p) : "memory");  // the allocation is not optimised away
            delete p;
        } else if (violation == "lock") {
            std::lock_guard<std::mutex> hold(mutex);
        } else if (violation == "syscall") {
            [[maybe_unused]] auto written = ::write(devNull, "x", 1);
        }
        buffer.applyGain(gain->get());
    }

    const juce::String getName() const override { return "AdacRtCheckControl"; }
    void prepareToPlay(double, int) override {}
    void releaseResources() override {}
    bool acceptsMidi() const override { return false; }
    bool producesMidi() const override { return false; }
    double getTailLengthSeconds() const override { return 0.0; }
    int getNumPrograms() override { return 1; }
    int getCurrentProgram() override { return 0; }
    void setCurrentProgram(int) override {}
    const juce::String getProgramName(int) override { return {}; }
    void changeProgramName(int, const juce::String&) override {}
    bool hasEditor() const override { return false; }
    juce::AudioProcessorEditor* createEditor() override { return nullptr; }
    void getStateInformation(juce::MemoryBlock&) override {}
    void setStateInformation(const void*, int) override {}

private:
    std::string violation;
    std::mutex mutex;
    int devNull = -1;
    juce::AudioParameterFloat* gain = nullptr;
};

}  // namespace

juce::AudioProcessor* JUCE_CALLTYPE createPluginFilter() { return new ControlProcessor(); }
