"""The build stage: plugin manifests, the build steps, release packaging, the ``adac`` command line
and the SCons tool that wires them (``site_scons/site_tools/adac.py`` loads it)."""
