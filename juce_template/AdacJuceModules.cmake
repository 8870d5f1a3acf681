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

# JUCE's modules, made real-time safe on the VST3 audio path (patches/juce-7.0.5-realtime.patch, each hunk
# says why): at configure time the installed modules (${JUCE_MODULES_DIR}, read-only) are copied into the
# build tree and patched there, then every module target JUCE's config declared (module libraries, per-format
# plugin wrappers, SDK header targets) is pointed at the copy. The copy is redone when the patch or the
# installed JUCE changes; a patch that does not apply stops the configure (no silent fallback).
function(adac_use_patched_juce_modules patch_file)
    if(NOT JUCE_VERSION VERSION_EQUAL 7.0.5)
        message(FATAL_ERROR "adac: ${patch_file} is for JUCE 7.0.5; found JUCE ${JUCE_VERSION} at ${JUCE_MODULES_DIR}")
    endif()
    if(NOT EXISTS "${patch_file}")
        message(FATAL_ERROR "adac: ${patch_file} is missing (it is written beside AdacJuceModules.cmake)")
    endif()
    find_program(ADAC_PATCH patch REQUIRED)
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${patch_file}")
    set(patched "${CMAKE_BINARY_DIR}/juce-modules-patched")
    file(SHA256 "${patch_file}" patch_hash)
    set(stamp "${JUCE_MODULES_DIR} ${patch_hash}")
    if(EXISTS "${patched}.stamp")
        file(READ "${patched}.stamp" old_stamp)
    endif()
    if(NOT old_stamp STREQUAL stamp)
        file(REMOVE_RECURSE "${patched}" "${patched}.tmp")
        file(COPY "${JUCE_MODULES_DIR}/" DESTINATION "${patched}.tmp")
        execute_process(COMMAND "${ADAC_PATCH}" -p1 --batch --forward --quiet -i "${patch_file}"
                        WORKING_DIRECTORY "${patched}.tmp" RESULT_VARIABLE failed OUTPUT_VARIABLE out ERROR_VARIABLE out)
        if(failed)
            message(FATAL_ERROR "adac: ${patch_file} does not apply to ${JUCE_MODULES_DIR}:\n${out}")
        endif()
        file(RENAME "${patched}.tmp" "${patched}")
        file(WRITE "${patched}.stamp" "${stamp}")
    endif()
    get_target_property(juce_dir juce_core SOURCE_DIR)
    get_directory_property(juce_targets DIRECTORY "${juce_dir}" BUILDSYSTEM_TARGETS)
    foreach(target IN LISTS juce_targets)
        get_target_property(type ${target} TYPE)
        if(NOT type STREQUAL "INTERFACE_LIBRARY" OR NOT target MATCHES "^juce_")
            continue()
        endif()
        foreach(property INTERFACE_SOURCES INTERFACE_INCLUDE_DIRECTORIES
                         INTERFACE_JUCE_MODULE_PATH INTERFACE_JUCE_MODULE_SOURCES INTERFACE_JUCE_MODULE_HEADERS)
            get_target_property(value ${target} ${property})
            if(value)
                string(REPLACE "${JUCE_MODULES_DIR}" "${patched}" value "${value}")
                set_target_properties(${target} PROPERTIES ${property} "${value}")
            endif()
        endforeach()
    endforeach()
endfunction()

if(NOT COMMAND juce_add_plugin)
    find_package(JUCE CONFIG REQUIRED)
    adac_use_patched_juce_modules("${CMAKE_CURRENT_LIST_DIR}/patches/juce-7.0.5-realtime.patch")
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
