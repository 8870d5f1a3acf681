// juce_audio_processors with VST3 hosting on (JUCE_PLUGINHOST_VST3=1, set for this target): the shared
// JUCE modules library compiles it with hosting off, for plugins. This object defines every symbol of the
// library's juce_audio_processors object, so the linker never takes that one from the archive.
#include <juce_audio_processors/juce_audio_processors.cpp>
