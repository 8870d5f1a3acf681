// adac-rtcheck-host: a small JUCE host that loads a VST3 and drives it through one real-time scenario,
// every audio-thread call (processBlock, and the parameter changes a host's automation makes on the audio
// thread) inside adac::RtScope, so that librtcheck.so (LD_PRELOAD) counts what the plugin does there.
//
//   adac-rtcheck-host PLUGIN.vst3 SCENARIO [--rate FS] [--block N] [--seconds S] [--timings] [--paced]
//                     [--publish FILE --expect updates|compiles]
//
// Scenarios (the audio thread is one std::thread; the message thread runs JUCE's dispatch loop; blocks
// follow each other at once, or with --paced at real-time pace):
//   steady           S seconds of noise in blocks of N
//   automate         the same, every parameter but bypass set every block from the audio thread (setValue,
//                    as a host's automation does), inside the bracket
//   automate-thread  the same, the parameters set continuously from another thread
//   block-sizes      prepared for 4 N samples (the VST3 maxSamplesPerBlock), then blocks of 4 N, 1, N, 3 N + 7,
//                    N / 2 + 3, ... in turn. (A block larger than the announced maximum breaks the VST3 contract:
//                    JUCE's own VST3 wrapper then overruns its scratch buffer before the plugin's code runs.)
//   rate             S/2 seconds at FS, then prepareToPlay again at 2 FS and S/2 seconds more
//   reload           (hot-reload plugin, always paced) playback; after 0.25 s FILE is copied over
//                    $ADAC_HOTRELOAD_PATH (temp + rename); playback goes on until <path>.status.json shows
//                    one more reload of the kind --expect names (timeout 120 s), then 0.5 s more
// With ADAC_HOTRELOAD_PATH set (the hot-reload plugin), every scenario starts when <path>.status.json shows
// the first reload (the DSP is compiled), polled every 5 ms, at most 120 s.
// Prints one JSON line: the scenario, blocks processed, the output's peak before and after the event
// (steady/automate: first and second half), whether every sample was finite, the status file (reload),
// and with --timings the processing time of every block in microseconds.
// Exit status 0 if the scenario ran, 2 on bad arguments, 1 on a failure (plugin not loaded, timeout).
#include <juce_audio_processors/juce_audio_processors.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <thread>

#include "rtcheck.h"

namespace {

struct Options {
    juce::String plugin, scenario, publish, expect;
    double rate = 48000;
    int block = 256;
    double seconds = 1.0;
    bool timings = false;
    bool paced = false;  // blocks at real-time pace (always for reload)
};

struct Result {
    long blocks = 0;
    int eventBlock = -1;    // rate: the first block at the new rate; reload: the first after the status showed it
    int publishBlock = -1;  // reload: the first block after the file was replaced
    float peakBefore = 0, peakAfter = 0;
    bool finite = true;
    juce::var status;
    juce::Array<juce::var> blockMicros;
    juce::String error;
};

juce::var readStatus(const juce::File& file)
{
    return file.existsAsFile() ? juce::JSON::parse(file.loadFileAsString()) : juce::var();
}

int statusCount(const juce::var& status, const juce::String& key)
{
    return status.isObject() ? (int) status.getProperty(key, 0) : 0;
}

class Runner {
public:
    Runner(juce::AudioPluginInstance& p, const Options& o) : plugin(p), opt(o) {}

    Result run()
    {
        const int maxBlock = opt.scenario == "block-sizes" ? 4 * opt.block : opt.block;
        buffer.setSize(2, maxBlock);
        noise.setSize(2, (int) opt.rate);  // one second of noise, read cyclically
        juce::Random random(17);
        for (int c = 0; c < 2; ++c)
            for (int k = 0; k < noise.getNumSamples(); ++k) noise.setSample(c, k, 0.2f * (random.nextFloat() - 0.5f));
        for (auto* p : plugin.getParameters())
            if (p != plugin.getBypassParameter()) automated.add(p);
        if (opt.timings) result.blockMicros.ensureStorageAllocated(1 << 16);

        plugin.enableAllBuses();
        plugin.prepareToPlay(opt.rate, maxBlock);
        if (watched != juce::File() && !awaitStatus("reloads", 0, false))  // the hot-reload plugin has its DSP
            return result;
        const long total = (long) (opt.seconds * opt.rate / opt.block);
        if (opt.scenario == "steady" || opt.scenario == "automate") {
            for (long b = 0; b < total; ++b) process(opt.block, b >= total / 2);
        } else if (opt.scenario == "automate-thread") {
            std::atomic<bool> stop{false};
            std::thread controller([&] {
                for (long round = 0; !stop.load(); ++round) {
                    for (int i = 0; i < automated.size(); ++i) automated[i]->setValue(automationValue(round, i));
                    std::this_thread::yield();
                }
            });
            for (long b = 0; b < total; ++b) process(opt.block, b >= total / 2);
            stop = true;
            controller.join();
        } else if (opt.scenario == "block-sizes") {
            const int sizes[] = {maxBlock, 1, opt.block, juce::jmin(maxBlock, 3 * opt.block + 7), opt.block / 2 + 3};
            long done = 0;
            for (long b = 0; done < total * opt.block; ++b) {
                const int n = juce::jmax(1, sizes[b % 5]);
                process(n, done >= total * opt.block / 2);
                done += n;
            }
        } else if (opt.scenario == "rate") {
            for (long b = 0; b < total / 2; ++b) process(opt.block, false);
            plugin.releaseResources();
            plugin.prepareToPlay(2 * opt.rate, opt.block);
            result.eventBlock = (int) result.blocks;
            for (long b = 0; b < total; ++b) process(opt.block, true);  // S/2 seconds at the doubled rate
        } else if (opt.scenario == "reload") {
            reload();
        }
        plugin.releaseResources();
        return result;
    }

private:
    static float automationValue(long step, int index) { return 0.5f + 0.45f * std::sin(0.05f * (float) step + (float) index); }

    void process(int n, bool after)
    {
        for (int c = 0; c < 2; ++c)
            for (int k = 0; k < n; ++k) buffer.setSample(c, k, noise.getSample(c, (int) ((noisePos + k) % noise.getNumSamples())));
        noisePos += n;
        juce::AudioBuffer<float> block(buffer.getArrayOfWritePointers(), 2, n);  // refers to buffer: no allocation
        std::chrono::steady_clock::duration took;
        {
            adac::RtScope audioThread;
            const auto start = std::chrono::steady_clock::now();
            if (opt.scenario == "automate")
                for (int i = 0; i < automated.size(); ++i) automated[i]->setValue(automationValue(result.blocks, i));
            plugin.processBlock(block, midi);
            took = std::chrono::steady_clock::now() - start;
        }
        if (opt.timings) result.blockMicros.add(std::chrono::duration<double, std::micro>(took).count());
        if (opt.paced) {  // real-time pace: the sleep is outside the bracket, like a host's wait for its device
            const auto now = std::chrono::steady_clock::now();
            if (next.time_since_epoch().count() == 0 || next < now - std::chrono::milliseconds(100)) next = now;
            next += std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(n / opt.rate));
            std::this_thread::sleep_until(next);
        }
        float peak = 0;
        for (int c = 0; c < 2; ++c)
            for (int k = 0; k < n; ++k) {
                const float v = block.getSample(c, k);
                if (!std::isfinite(v)) result.finite = false;
                peak = juce::jmax(peak, std::abs(v));
            }
        (after ? result.peakAfter : result.peakBefore) = juce::jmax(after ? result.peakAfter : result.peakBefore, peak);
        ++result.blocks;
    }

    // Polls the hot-reload plugin's status file until its count `key` exceeds `above`, playing paced blocks
    // meanwhile if `play`; false (and result.error) if a publish fails to compile or after 120 s.
    bool awaitStatus(const juce::String& key, int above, bool play)
    {
        const int failures = statusCount(readStatus(statusFile), "failures");
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
        for (;;) {
            const auto status = readStatus(statusFile);
            if (statusCount(status, key) > above) return true;
            if (statusCount(status, "failures") > failures || (!play && statusCount(status, "failures") > 0)) {
                result.error = "the hot-reload plugin failed to load " + watched.getFullPathName() + ": "
                             + status.getProperty("last_error", "").toString();
                return false;
            }
            if (std::chrono::steady_clock::now() > deadline) {
                result.error = "timeout: no new " + key + " in " + statusFile.getFullPathName();
                return false;
            }
            if (play) process(opt.block, false);
            else std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }

    void reload()
    {
        const long quarter = (long) (0.25 * opt.rate / opt.block);
        for (long b = 0; b < quarter; ++b) process(opt.block, false);
        const int before = statusCount(readStatus(statusFile), opt.expect);
        const juce::File temp = watched.getSiblingFile(".rtcheck-publish.tmp");
        if (!juce::File(opt.publish).copyFileTo(temp) || !temp.moveFileTo(watched)) {
            result.error = "cannot publish " + opt.publish;
            return;
        }
        result.publishBlock = (int) result.blocks;
        if (!awaitStatus(opt.expect, before, true)) return;  // the reload is applied
        result.eventBlock = (int) result.blocks;
        for (long b = 0; b < 2 * quarter; ++b) process(opt.block, true);  // the crossfade and beyond
        result.status = readStatus(statusFile);
    }

    juce::AudioPluginInstance& plugin;
    const Options& opt;
    // the hot-reload plugin's watched file (ADAC_HOTRELOAD_PATH) and status file; none for other plugins
    const juce::String watchedPath = juce::SystemStats::getEnvironmentVariable("ADAC_HOTRELOAD_PATH", {});
    const juce::File watched = watchedPath.isEmpty() ? juce::File() : juce::File(watchedPath);
    const juce::File statusFile = watchedPath.isEmpty() ? juce::File() : juce::File(watchedPath + ".status.json");
    std::chrono::steady_clock::time_point next;
    Result result;
    juce::AudioBuffer<float> buffer, noise;
    juce::MidiBuffer midi;
    juce::Array<juce::AudioProcessorParameter*> automated;
    long noisePos = 0;
};

bool parse(int argc, char** argv, Options& opt)
{
    if (argc < 3) return false;
    opt.plugin = argv[1];
    opt.scenario = argv[2];
    const juce::StringArray scenarios{"steady", "automate", "automate-thread", "block-sizes", "rate", "reload"};
    if (!scenarios.contains(opt.scenario)) return false;
    for (int a = 3; a < argc; ++a) {
        const juce::String arg = argv[a];
        const bool value = a + 1 < argc;
        if (arg == "--rate" && value) opt.rate = juce::String(argv[++a]).getDoubleValue();
        else if (arg == "--block" && value) opt.block = juce::String(argv[++a]).getIntValue();
        else if (arg == "--seconds" && value) opt.seconds = juce::String(argv[++a]).getDoubleValue();
        else if (arg == "--publish" && value) opt.publish = argv[++a];
        else if (arg == "--expect" && value) opt.expect = argv[++a];
        else if (arg == "--timings") opt.timings = true;
        else if (arg == "--paced") opt.paced = true;
        else return false;
    }
    const bool reloadArgs = opt.publish.isNotEmpty() && (opt.expect == "updates" || opt.expect == "compiles");
    opt.paced = opt.paced || opt.scenario == "reload";
    return opt.rate > 0 && opt.block > 0 && opt.seconds > 0 && (opt.scenario == "reload") == reloadArgs;
}

}  // namespace

int main(int argc, char** argv)
{
    Options opt;
    if (!parse(argc, argv, opt)) {
        std::fprintf(stderr, "usage: adac-rtcheck-host PLUGIN.vst3 steady|automate|automate-thread|block-sizes|rate|reload "
                             "[--rate FS] [--block N] [--seconds S] [--timings] [--paced] [--publish FILE --expect updates|compiles]\n");
        return 2;
    }
    juce::ScopedJuceInitialiser_GUI juce;
    juce::AudioPluginFormatManager formats;
    auto* vst3 = new juce::VST3PluginFormat();
    formats.addFormat(vst3);
    juce::OwnedArray<juce::PluginDescription> types;
    vst3->findAllTypesForFile(types, opt.plugin);
    if (types.isEmpty()) {
        std::fprintf(stderr, "adac-rtcheck-host: no VST3 plugin in %s\n", opt.plugin.toRawUTF8());
        return 1;
    }
    juce::String error;
    auto plugin = formats.createPluginInstance(*types[0], opt.rate, opt.block, error);
    if (!plugin) {
        std::fprintf(stderr, "adac-rtcheck-host: cannot load %s: %s\n", opt.plugin.toRawUTF8(), error.toRawUTF8());
        return 1;
    }

    Result result;
    std::thread audio([&] {
        result = Runner(*plugin, opt).run();
        juce::MessageManager::callAsync([] { juce::MessageManager::getInstance()->stopDispatchLoop(); });
    });
    juce::MessageManager::getInstance()->runDispatchLoop();
    audio.join();
    const int parameters = plugin->getParameters().size();
    plugin.reset();

    auto* out = new juce::DynamicObject();
    out->setProperty("scenario", opt.scenario);
    out->setProperty("plugin", types[0]->name);
    out->setProperty("parameters", parameters);
    out->setProperty("blocks", (juce::int64) result.blocks);
    out->setProperty("event_block", result.eventBlock);
    out->setProperty("publish_block", result.publishBlock);
    out->setProperty("peak_before", result.peakBefore);
    out->setProperty("peak_after", result.peakAfter);
    out->setProperty("finite", result.finite);
    out->setProperty("status", result.status);
    out->setProperty("error", result.error);
    if (opt.timings) out->setProperty("block_us", result.blockMicros);
    std::printf("%s\n", juce::JSON::toString(juce::var(out), true).toRawUTF8());
    return result.error.isEmpty() ? 0 : 1;
}
