"""adac's SCons tool: ``adac.py`` in this folder (``generate(env)`` / ``exists(env)``, SCons' conventions).

Use it from any project with::

    import adac.build
    env = Environment(tools=["default", "adac"], toolpath=[adac.build.scons_toolpath()])

The tool module imports only the standard library and SCons (SCons loads it by file name, under the
tool's name ``adac``); this repository's ``site_scons/site_tools/adac.py`` is a shim that loads it.
"""
