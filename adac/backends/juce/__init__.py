"""JUCE backend: a ``.dsp`` -> a JUCE CMake project -> VST3 / LV2 / Standalone (/ AU) bundles.

See :mod:`adac.backends.juce.project` and docs/juce.md.
"""
from .project import build_plugin, copy_bundles, export_juce, install_bundles, strip_binaries

__all__ = ["build_plugin", "copy_bundles", "export_juce", "install_bundles", "strip_binaries"]
