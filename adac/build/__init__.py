"""The build stage: plugin manifests, the build steps, release packaging, the ``adac`` command line
and the SCons tool that wires them (``adac/build/scons/adac.py``; ``site_scons/site_tools/adac.py`` loads it)."""
import os


def scons_toolpath() -> str:
    """The folder holding adac's SCons tool, for ``Environment(tools=[..., "adac"], toolpath=[scons_toolpath()])``."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "scons")
