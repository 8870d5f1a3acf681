# adac: the JUCE modules as ONE static library shared by every adac plugin of a build tree.
#
# juce_add_plugin() normally compiles all JUCE module sources into each plugin's shared-code
# target. Here they are compiled once into `adac_juce_modules` (no plugin identity enters these
# sources), and every plugin links it: a second plugin in the same tree compiles only its own
# processor, its DSP and JUCE's per-format wrappers, and a model change recompiles only FaustDsp.cpp.
#
# Included by each generated plugin project and by the superproject of adac.juce.build_plugin;
# the first inclusion defines the target, later ones reuse it.
include_guard(GLOBAL)

if(NOT COMMAND juce_add_plugin)
    find_package(JUCE CONFIG REQUIRED)
endif()

# Settings that change JUCE's headers: they must be identical for the library and every plugin.
set(ADAC_JUCE_DEFINITIONS
    JUCE_WEB_BROWSER=0
    JUCE_USE_CURL=0
    JUCE_USE_FLAC=0            # audio file codecs are not needed by an effect plugin
    JUCE_USE_OGGVORBIS=0
    JUCE_USE_MP3AUDIOFORMAT=0
    JUCE_USE_LAME_AUDIO_FORMAT=0
    JUCE_USE_WINDOWS_MEDIA_FORMAT=0
    JUCE_VST3_CAN_REPLACE_VST2=0
    JUCE_DISPLAY_SPLASH_SCREEN=0
    JUCE_REPORT_APP_USAGE=0
    JUCE_MODAL_LOOPS_PERMITTED=0
    JUCE_STRICT_REFCOUNTEDPOINTER=1)

if(NOT TARGET adac_juce_modules)
    add_library(adac_juce_modules STATIC)
    # The module sources come in through these INTERFACE libraries, linked PRIVATE so that
    # consumers do not get the sources again; their include directories and definitions are
    # re-exported below instead (the same technique JUCE uses for its format wrappers).
    target_link_libraries(adac_juce_modules
        PRIVATE
            juce::juce_audio_utils
            juce::juce_audio_processors
            juce::juce_gui_extra
        PUBLIC
            juce::juce_recommended_config_flags)
    target_compile_definitions(adac_juce_modules PUBLIC ${ADAC_JUCE_DEFINITIONS})
    target_compile_definitions(adac_juce_modules INTERFACE
        $<TARGET_PROPERTY:adac_juce_modules,COMPILE_DEFINITIONS>)
    target_include_directories(adac_juce_modules INTERFACE
        $<TARGET_PROPERTY:adac_juce_modules,INCLUDE_DIRECTORIES>)
    target_compile_features(adac_juce_modules PUBLIC cxx_std_17)
    # Debian's JUCE builds juce_graphics against the system libpng/libjpeg and links them to each
    # juce_add_* target, not to the module: the shared library must carry them itself.
    if(TARGET juce::pkgconfig_JUCE_IMG_LINUX_DEPS)
        target_link_libraries(adac_juce_modules PUBLIC juce::pkgconfig_JUCE_IMG_LINUX_DEPS)
    endif()
    # like a plugin's own code: position independent (linked into .so modules), symbols hidden
    # (two JUCE plugins in one host must not resolve each other's JUCE symbols)
    set_target_properties(adac_juce_modules PROPERTIES
        POSITION_INDEPENDENT_CODE ON
        C_VISIBILITY_PRESET hidden
        CXX_VISIBILITY_PRESET hidden
        VISIBILITY_INLINES_HIDDEN ON)
endif()
