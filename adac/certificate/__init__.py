"""The stability certificate of an IR: a small-gain bound per loop, on the constants the code stores.

``certify(ir, controls)`` (also ``adac.certify``) writes the certificate; :func:`gate` refuses what it
does not certify. See :mod:`adac.certificate.stability` and docs/certificate.md.
"""
from .bounds import BOUNDS, bound
from .stability import StabilityWarning, certify, certify_rates, explain, gate, write_certificate

__all__ = ["BOUNDS", "bound", "StabilityWarning", "certify", "certify_rates", "explain", "gate", "write_certificate"]
