"""The FLAMO frontend: the only code in adac that imports torch or FLAMO.

``flamo_to_json`` (a model -> the IR), ``json_to_flamo`` (the IR -> a FLAMO model, the round trip),
``load_model`` (a manifest's factory and checkpoint), and FLAMO's own responses as the reference
(:mod:`adac.frontend.flamo.reference`).
"""
from .checkpoint import load_model
from .extract import flamo_to_json
from .rebuild import json_to_flamo

__all__ = ["flamo_to_json", "json_to_flamo", "load_model"]
