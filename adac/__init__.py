"""adac: compile trained FLAMO models to real-time FAUST DSP, certificates and plugins.

Public API::

    ir = adac.flamo_to_json(model, fs, name="MyReverb")     # FLAMO model -> IR (dict)
    code = adac.json_to_faust(ir, controls=None)             # IR -> FAUST source
    model = adac.json_to_flamo(ir)                           # IR -> FLAMO model (round trip)
    code = adac.flamo_to_faust(model, fs, name="MyReverb")   # both steps
    report = adac.verify(model, fs, n_samples=8192)          # render FAUST for real, compare with FLAMO
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["flamo_to_json", "json_to_faust", "json_to_flamo", "flamo_to_faust", "verify",
           "certify", "HotReload", "export_juce", "AdacError", "__version__"]

from .errors import AdacError  # noqa: E402
from .faust_backend import json_to_faust  # noqa: E402


def flamo_to_json(model, fs: int, name: str = "adac_model") -> dict:
    """FLAMO model -> IR document. See :func:`adac.flamo_frontend.flamo_to_json`."""
    from .flamo_frontend import flamo_to_json as frontend

    return frontend(model, fs, name=name)


def json_to_flamo(config: dict, **overrides):
    """IR document -> FLAMO model. See :func:`adac.flamo_rebuild.json_to_flamo`."""
    from .flamo_rebuild import json_to_flamo as rebuild

    return rebuild(config, **overrides)


def flamo_to_faust(model, fs: int, name: str = "adac_model", controls: dict | None = None, **options) -> str:
    """FLAMO model -> FAUST source, through the IR."""
    return json_to_faust(flamo_to_json(model, fs, name=name), controls, **options)


def verify(model_or_config, fs: int | None = None, n_samples: int = 8192, **options):
    """Render the generated FAUST for real and compare with FLAMO. See :func:`adac.equivalence.verify`."""
    from .equivalence import verify as run

    return run(model_or_config, fs, n_samples, **options)


def __getattr__(name):
    # Parts that pull in heavier dependencies load on first use.
    if name == "certify":
        # the module, callable: adac.certify(ir, controls) and adac.certify.gate(cert) (see adac/certify.py)
        import importlib

        return importlib.import_module(".certify", __name__)
    if name == "HotReload":
        from .hotreload import HotReload

        return HotReload
    if name == "export_juce":
        from .juce import export_juce

        return export_juce
    raise AttributeError(f"module 'adac' has no attribute {name!r}")
