"""This repository's SCons tool ``adac``: a shim for the tool shipped in the package, ``adac/build/scons/adac.py``.

It loads that file by its path in this checkout, so the SConstruct builds with any SCons, the one
pip installs with adac or Debian's (whose Python has no adac). Other projects use the installed tool:
``Environment(tools=["default", "adac"], toolpath=[adac.build.scons_toolpath()])``.
"""
import importlib.util
import os
import sys

_PATH = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir,
                                      "adac", "build", "scons", "adac.py"))
_NAME = "adac_scons_tool"

_tool = sys.modules.get(_NAME)
if _tool is None or getattr(_tool, "__file__", None) != _PATH:
    _spec = importlib.util.spec_from_file_location(_NAME, _PATH)
    _tool = importlib.util.module_from_spec(_spec)
    sys.modules[_NAME] = _tool
    _spec.loader.exec_module(_tool)

generate = _tool.generate
exists = _tool.exists
_tool.restore_package(__name__)  # SCons registered this shim as sys.modules["adac"]: give the name back
