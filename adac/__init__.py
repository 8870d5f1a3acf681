"""adac: compile trained FLAMO models to real-time FAUST DSP, certificates and plugins.

Public API::

    ir = adac.flamo_to_json(model, fs, name="MyReverb")     # FLAMO model -> IR (dict)
    code = adac.json_to_faust(ir, controls=None)             # IR -> FAUST source
    model = adac.json_to_flamo(ir)                           # IR -> FLAMO model (round trip)
    code = adac.flamo_to_faust(model, fs, name="MyReverb")   # both steps
    cert = adac.certify(ir, controls=None)                   # stability certificate
    report = adac.verify(model, fs, n_samples=8192)          # render FAUST for real, compare with FLAMO

The stages are subpackages (see docs/architecture.md): ``adac.frontend.flamo``, ``adac.ir``,
``adac.analysis``, ``adac.backends.faust``, ``adac.backends.juce``, ``adac.certificate``,
``adac.equivalence``, ``adac.build``, ``adac.hotreload``, ``adac.report``. Parts that import torch and
FLAMO, numpy or a compiler load on first use, so ``import adac`` (and the SCons tool, which imports
``adac.build``) stays light.
"""
from __future__ import annotations

from .common.errors import AdacError
from .common.version import __version__

__all__ = ["flamo_to_json", "json_to_faust", "json_to_flamo", "flamo_to_faust", "verify",
           "certify", "HotReload", "export_juce", "AdacError", "__version__"]


def json_to_faust(ir: dict, controls: dict | None = None, **options) -> str:
    """IR document -> FAUST source. See :func:`adac.backends.faust.json_to_faust`."""
    from .backends.faust import json_to_faust as backend

    return backend(ir, controls, **options)


def certify(ir: dict, controls: dict | None = None, **options) -> dict:
    """Stability certificate of an IR. See :func:`adac.certificate.certify`."""
    from .certificate import certify as certificate

    return certificate(ir, controls, **options)


def flamo_to_json(model, fs: int, name: str = "adac_model") -> dict:
    """FLAMO model -> IR document. See :func:`adac.frontend.flamo.flamo_to_json`."""
    from .frontend.flamo import flamo_to_json as frontend

    return frontend(model, fs, name=name)


def json_to_flamo(ir: dict, **overrides):
    """IR document -> FLAMO model. See :func:`adac.frontend.flamo.json_to_flamo`."""
    from .frontend.flamo import json_to_flamo as rebuild

    return rebuild(ir, **overrides)


def flamo_to_faust(model, fs: int, name: str = "adac_model", controls: dict | None = None, **options) -> str:
    """FLAMO model -> FAUST source, through the IR."""
    return json_to_faust(flamo_to_json(model, fs, name=name), controls, **options)


def verify(model_or_ir, fs: int | None = None, n_samples: int = 8192, **options):
    """Render the generated FAUST for real and compare it with FLAMO. See :func:`adac.equivalence.verify`."""
    from .equivalence import verify as run

    return run(model_or_ir, fs, n_samples, **options)


def __getattr__(name):
    if name == "HotReload":
        from .hotreload import HotReload

        return HotReload
    if name == "export_juce":
        from .backends.juce import export_juce

        return export_juce
    raise AttributeError(f"module 'adac' has no attribute {name!r}")
