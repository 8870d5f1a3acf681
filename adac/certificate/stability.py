"""Stability certificate of an IR (reads only the IR).

Criterion (small gain): a loop ``y = F(x + G y)`` is stable if the product of
its elements' spectral norms stays below one at every frequency, evaluated on
the constants the emitted code stores (single precision by default). Since
``det(I - F G) = det(I - G F)`` the elements may be taken in any cyclic order,
so runs of neighbouring diagonal elements (delays, per-line gains, parallel
filters) are merged and bounded per channel: a per-line gain then offsets its
own line's delay, not the longest one. Inside an element, series multiply,
summed branches add, concatenated ones take ``sqrt`` of the sum of squares; a nested loop is bounded by ``||F|| / (1 - ||F|| ||G||)``
when its own bound is below one, else it cannot be bounded (``indeterminate``).
One "bound" row per IR kind lives in :data:`adac.certificate.bounds.BOUNDS`.

Frequency grid: 4097 uniform points on [0, pi], plus every pole angle of every
filter section and points just beside it (resonances peak there, between
uniform points), then a bounded local maximiser (scipy ``minimize_scalar``) on
the bracket around each of the 32 highest local maxima of each loop's bound. Delays and orthogonal matrices have analytic,
frequency-independent norms; filter sections also get an exact pole check
(a pole on or outside the unit circle anywhere is ``unstable``).

Verdicts: certified-stable (bound < 1 everywhere), marginally-stable (a lossless
loop: every element all-pass and the bound 1 within 1e-6 in float32, 1e-12 in float64), indeterminate (a
nested loop whose own bound is not below one), not-certified (bound >= 1
somewhere), unstable (a filter pole on or outside the unit circle anywhere).
:func:`gate` refuses the last three (strict) and passes a marginal loop with a
warning. See docs/certificate.md.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.optimize import minimize_scalar

from ..analysis.controls import loop_gamma_range, normalise_controls, rate_controls
from ..analysis.response import Realisation, diagonal_response
from ..common.errors import StabilityError
from ..common.fileio import write_json_atomic
from ..common.schema import check_schema
from ..common.version import __version__
from ..ir import diagonal_kinds, iter_nodes, validate_ir
from ..ir.fractional import DEFAULT_ORDER
from ..ir.document import check_delay_limits
from ..ir.passes import check_loops_realisable, fold_gains
from ..ir.rate import relower
from ..ir.sections import emitted_section
from .bounds import bound

UNIFORM_POINTS = 4097
REFINED_PEAKS = 32  # local maxima of each loop's bound refined by the maximiser
LOSSLESS_TOLERANCE = {np.float32: 1e-6, np.float64: 1e-12}  # |bound - 1| of a lossless loop, per precision
SEVERITY = ["certified-stable", "marginally-stable", "indeterminate", "not-certified", "unstable"]


# --- the certificate --------------------------------------------------------------------------


def _section_poles(node: dict, real: Realisation):
    sections = np.asarray(node["sections"], dtype=float)
    flat = sections.reshape(sections.shape[0], 6, -1)
    for k in range(flat.shape[0]):
        for c in range(flat.shape[2]):
            _b0, _b1, _b2, _a0, a1, a2 = emitted_section(flat[k, :, c], real.dtype)
            yield k, c, np.roots([1.0, a1, a2]) if (a1 or a2) else np.array([0.0])


def _unstable_sections(graph: dict, real: Realisation) -> list[dict]:
    """Every filter section of ``graph`` (nested ones too) with a pole on or outside the unit circle."""
    unstable = []
    for node, _ in iter_nodes(graph):
        if node["kind"] == "sos":
            for k, c, poles in _section_poles(node, real):
                modulus = float(np.abs(poles).max())
                if modulus >= 1:
                    unstable.append({"path": node.get("path", ""), "section": int(k), "channel": str(c),
                                     "pole_modulus": modulus})
    return unstable


def frequency_grid(ir: dict, real: Realisation) -> np.ndarray:
    """The angular frequencies (rad/sample, 0..pi) a certificate evaluates its loops on: a uniform grid plus
    every section pole's angle and points beside it."""
    points = [np.linspace(0.0, math.pi, UNIFORM_POINTS)]
    for node, _ in iter_nodes(ir["graph"]):
        if node["kind"] == "sos":
            for _k, _c, poles in _section_poles(node, real):
                angles = np.abs(np.angle(poles))
                for delta in (0.0, 1e-6, 1e-4, 1e-3, 1e-2):
                    points.append(np.clip(np.concatenate([angles - delta, angles + delta]), 0, math.pi))
    return np.unique(np.concatenate(points))


def _chain(node: dict) -> list[dict]:
    """The elements of a path in signal order (nested series flattened)."""
    if node["kind"] == "series":
        return [leaf for child in node["children"] for leaf in _chain(child)]
    return [node]


def _is_diagonal(node: dict) -> bool:
    return node["kind"] in diagonal_kinds() and bool(node.get("diagonal"))


def _groups(loop: dict) -> list[list[dict]]:
    """Loop elements in signal order (feedback path, then feedforward), cyclically, with runs of
    diagonal elements merged: their per-channel product is bounded exactly."""
    elements = _chain(loop["feedback"]) + _chain(loop["feedforward"])
    groups: list[list[dict]] = []
    for element in elements:
        if groups and _is_diagonal(element) and _is_diagonal(groups[-1][-1]):
            groups[-1].append(element)
        else:
            groups.append([element])
    if len(groups) > 1 and _is_diagonal(groups[0][0]) and _is_diagonal(groups[-1][-1]):
        groups[0] = groups.pop() + groups[0]  # the loop closes: the last run meets the first
    return groups


def _group_bound(group: list[dict], w: np.ndarray, real: Realisation) -> np.ndarray:
    if len(group) == 1:
        return bound(group[0], w, real, True)
    product = np.ones((len(w), group[0]["in"]), dtype=complex)
    for element in group:
        product = product * diagonal_response(element, w, real, True)
    return np.abs(product).max(axis=1)


def loop_bound(loop: dict, w: np.ndarray, real: Realisation) -> np.ndarray:
    """The small-gain bound of the ``recursion`` node ``loop`` at angular frequencies ``w`` (shape ``(len(w),)``):
    the product of its groups' spectral norms (:func:`_groups`)."""
    total = np.ones(len(w))
    for group in _groups(loop):
        total = total * _group_bound(group, w, real)
    return total


def _refine(bound_at, grid: np.ndarray, values: np.ndarray) -> tuple[float, float, int]:
    """Largest value of ``bound_at`` (a function of angular frequencies): every local maximum of the grid (the
    highest REFINED_PEAKS of them) is refined with a bounded scalar maximiser on the bracket between its two
    neighbours, so a resonance that peaks between grid points is found (the grid holds every pole angle too)."""
    if np.ptp(values) <= 1e-12 * max(float(values.max()), 1e-300):
        return 0.0, float(values.max()), 0  # frequency independent (delays, gains, matrices): nothing to refine
    interior = np.arange(1, len(grid) - 1)
    peaks = interior[(values[interior] >= values[interior - 1]) & (values[interior] >= values[interior + 1])]
    for end in (0, len(grid) - 1):  # the band edges are candidates too
        neighbour = 1 if end == 0 else len(grid) - 2
        if values[end] >= values[neighbour]:
            peaks = np.append(peaks, end)
    peaks = peaks[np.argsort(values[peaks])[::-1][:REFINED_PEAKS]]
    i_best = int(np.argmax(values))
    best_w, best = float(grid[i_best]), float(values[i_best])
    for i in peaks:
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        if hi <= lo:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = minimize_scalar(lambda x: -float(bound_at(np.array([x]))[0]), bounds=(lo, hi), method="bounded",
                                  options={"xatol": 1e-12})
        if -res.fun > best:
            best, best_w = float(-res.fun), float(res.x)
    return best_w, best, len(peaks)


def _loop_report(node: dict, grid: np.ndarray, real: Realisation, fs: int) -> dict:
    """Small-gain bound of one loop: det(I - F G) = det(I - G F) lets the elements be taken in any
    cyclic order, so neighbouring diagonal elements (delays, per-line gains, parallel filters) are
    merged per channel before the product of spectral norms is taken."""
    groups = _groups(node)
    tolerance = LOSSLESS_TOLERANCE[real.dtype]
    values = loop_bound(node, grid, real)
    elements = []
    lossless = True
    for group in groups:
        norms = _group_bound(group, grid, real)
        finite = np.isfinite(norms).all()
        for leaf in group:
            leaf_norms = bound(leaf, grid, real, True)
            elements.append({"path": leaf.get("path", ""), "kind": leaf["kind"],
                             "max_norm": float(leaf_norms.max()) if np.isfinite(leaf_norms).all() else None})
        if any(leaf["kind"] == "recursion" for leaf in group) or not finite or np.ptp(norms) > 1e-9 \
                or abs(norms.max() - 1) > tolerance:
            lossless = False
    report = {"id": node["id"], "path": node.get("path", ""), "elements": elements}
    unstable = _unstable_sections(node, real)
    if unstable:  # the small-gain bound needs every element stable: a pole outside decides the loop
        s = unstable[0]
        report.update(verdict="unstable", max_bound=None, worst_frequency_hz=None, margin=None,
                      reason=f"filter {s['path']} section {s['section']} (channel {s['channel']}) has a pole of "
                             f"modulus {s['pole_modulus']:.9g}")
        return report, 0
    if not np.isfinite(values).all():
        inner = next(e["path"] for e in elements if e["max_norm"] is None)
        report.update(verdict="indeterminate", max_bound=None, worst_frequency_hz=None, margin=None,
                      reason=f"{inner} cannot be bounded: a nested loop whose own bound is not below one, "
                             f"or a constant beyond {np.dtype(real.dtype).name}'s range")
        return report, 0
    best_w, best, refined = _refine(lambda w: loop_bound(node, w, real), grid, values)
    if best < 1 - (tolerance if lossless else 0.0):
        verdict = "certified-stable"
    elif lossless and abs(best - 1) <= tolerance:
        verdict = "marginally-stable"
    else:
        verdict = "not-certified"
    report.update(verdict=verdict, max_bound=best, worst_frequency_hz=best_w * fs / (2 * math.pi), margin=1 - best)
    return report, refined


def certify(ir: dict, controls: dict | None = None, *, precision: str = "float32",
            fractional_order: int = DEFAULT_ORDER, delay_limits: dict | None = None) -> dict:
    """Stability certificate of an IR (see the module docstring); validated by ``schemas/cert.schema.json``.

    With an rt60 control, every loop is certified at the slider's maximum, where
    its decay is slowest (the largest per-sample factor ``gamma``, which the
    emitted code never exceeds): the certificate covers the whole slider range,
    at every sample rate. ``precision``: ``float32`` (FAUST's default build: every
    constant rounded to single precision first) or ``float64`` (``-double``).
    A delay-free loop raises the AdacError ``json_to_faust`` raises (it cannot run sample by sample), and
    so do delays beyond ``delay_limits`` (:func:`adac.ir.document.check_delay_limits`).
    """
    source = f"IR of {ir.get('name', '?')!r}" if isinstance(ir, dict) else "IR"
    validate_ir(ir, source=source)
    check_delay_limits(ir, delay_limits, source=source)  # before anything allocates a delay line
    check_loops_realisable(ir["graph"])  # the emitted code refuses a delay-free loop: so does the certificate
    gamma, covered = 1.0, None
    if controls:
        normalised = normalise_controls(controls, ir, fractional_order)
        gamma, covered = loop_gamma_range(normalised, ir)
    real = Realisation(dtype=np.float32 if precision == "float32" else np.float64,
                       fractional_order=fractional_order, loop_gamma=gamma)
    ir = dict(ir, graph=fold_gains(ir["graph"]))  # the graph as emitted
    grid = frequency_grid(ir, real)
    unstable = _unstable_sections(ir["graph"], real)
    loops, refined = [], 0
    for node, _ in iter_nodes(ir["graph"]):
        if node["kind"] == "recursion":
            report, n = _loop_report(node, grid, real, ir["fs"])
            loops.append(report)
            refined += n
    verdicts = [loop["verdict"] for loop in loops] + (["unstable"] if unstable else []) or ["certified-stable"]
    certificate = {
        "format": "adac-certificate",
        "version": "1.0",
        "adac_version": __version__,
        "ir_version": ir["version"],
        "model": ir["name"],
        "fs": ir["fs"],
        "verdict": max(verdicts, key=SEVERITY.index),
        "precision": precision,
        "criterion": "small gain: for every loop y = F(x + G y), the product of its elements' spectral norms "
                     "(in cyclic order, neighbouring diagonal elements merged per channel) stays below 1 at every "
                     "frequency, on the emitted constants; every filter pole strictly inside the unit circle",
        "controls": covered,
        "loop_gamma": gamma,
        "grid": {"method": f"{UNIFORM_POINTS} uniform points on [0, pi] + every filter pole angle and points beside it "
                           f"(+-1e-6, 1e-4, 1e-3, 1e-2 rad); then the {REFINED_PEAKS} highest local maxima of each "
                           "loop's bound refined by a bounded scalar maximiser (scipy minimize_scalar) on the bracket "
                           "between their grid neighbours",
                 "points": int(len(grid)), "refined": int(refined)},
        "loops": loops,
        "unstable_sections": unstable,
    }
    check_schema(certificate, "cert.schema.json", source="certificate")
    return certificate


def certify_rates(ir: dict, controls: dict | None = None, rates=(), *, fractional_order: int = DEFAULT_ORDER,
                  **options) -> dict:
    """:func:`certify` at the model's rate, and under ``rates`` (``{"<Hz>": certificate}``) the certificate of its
    lowering (:func:`adac.ir.rate.relower`, with :func:`adac.analysis.controls.rate_controls`) for each other
    rate in ``rates``: the plugin accepts a host rate only with a certified lowering (:func:`gate` checks them all)."""
    certificate = certify(ir, controls, fractional_order=fractional_order, **options)
    lowered = {str(rate): certify(relower(ir, rate), rate_controls(controls, ir, fractional_order),
                                  fractional_order=fractional_order, **options)
               for rate in sorted({int(r) for r in rates} - {ir["fs"]})}
    if lowered:
        certificate["rates"] = lowered
        check_schema(certificate, "cert.schema.json", source="certificate")
    return certificate


class StabilityWarning(UserWarning):
    """A model exported without a strict certificate (marginal, or strict: false)."""


def _loop_text(loop: dict) -> str:
    where = f"loop {loop['path'] or loop['id']}"
    if loop["max_bound"] is None:
        return f"{where}: {loop.get('reason', 'cannot be bounded')} (margin unknown)"
    return (f"{where}: bound {loop['max_bound']:.9g} at {loop['worst_frequency_hz']:.6g} Hz "
            f"(margin {loop['margin']:.3g})")


def explain(certificate: dict) -> str:
    """One line: the verdict, where (the loop path or filter section) and the margin."""
    verdict = certificate["verdict"]
    parts = []
    if certificate["unstable_sections"]:
        s = certificate["unstable_sections"][0]
        parts.append(f"filter {s['path']} section {s['section']} (channel {s.get('channel', '?')}) has a pole of "
                     f"modulus {s['pole_modulus']:.9g}")
    loops = certificate["loops"]
    same = [loop for loop in loops if loop["verdict"] == verdict]
    if same or loops:
        worst = same[0] if same else min(loops, key=lambda loop: loop["margin"] if loop["margin"] is not None else -math.inf)
        parts.append(_loop_text(worst))
    return f"{certificate['model']}: stability certificate verdict '{verdict}': " + ("; ".join(parts) or "no loop")


def gate(certificate: dict, strict: bool = True) -> None:
    """Refuse the export of a model the certificate does not certify.

    ``unstable``, ``not-certified`` and ``indeterminate`` raise StabilityError (the
    message gives the verdict, the loop path and the margin) unless ``strict`` is
    False, which warns instead. ``marginally-stable`` (a lossless loop: it neither
    grows nor decays, exactly what a lossless prototype is meant to do) passes
    with a StabilityWarning. ``certified-stable`` passes silently. The certificates of the model's lowerings
    for other rates (``rates``, :func:`certify_rates`) pass the same gate.
    """
    for rate, lowered in certificate.get("rates", {}).items():
        try:
            gate(lowered, strict)
        except StabilityError as exc:
            raise StabilityError(f"at {rate} Hz (the model lowered for the host's rate): {exc}") from None
    verdict = certificate["verdict"]
    if verdict == "certified-stable":
        return
    message = explain(certificate)
    if verdict == "marginally-stable":
        warnings.warn(message + " (lossless: exported; any loop gain above 1 would make it grow)", StabilityWarning,
                      stacklevel=2)
        return
    if not strict:
        warnings.warn(message + " (exported anyway: strict is false)", StabilityWarning, stacklevel=2)
        return
    raise StabilityError(message + "; the export is refused (set strict: false in the manifest to build anyway)")


def write_certificate(ir: dict, path, controls: dict | None = None, **options) -> dict:
    """Certify and write ``path`` atomically (the build writes it whatever the verdict; :func:`gate` decides)."""
    certificate = certify(ir, controls, **options)
    write_json_atomic(path, certificate)
    return certificate
