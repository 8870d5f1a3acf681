"""Re-lowering: the IR lowered again for another sample rate, so that it keeps its meaning in seconds and hertz.

:func:`relower` maps an IR made at ``fs0`` to the same model at ``fs`` (``ratio = fs / fs0``), one rule per
node kind (:data:`RELOWER`):

* ``delay`` / ``gain_delay``: every length scaled in seconds, ``d' = round(d * ratio)`` samples (an
  echo moves by at most half a sample; a fractional delay's Lagrange interpolator,
  :mod:`adac.ir.fractional`, would darken the top octave on every pass of a loop: docs/sample_rate.md). In a feedback
  delay network (``recursion`` of a diagonal delay bank whose feedback holds a diagonal per-line gain), the
  line gains are re-derived for the rounded lengths, ``g' = g^(d' / (d * ratio))``: every line decays by the
  same dB per second as the trained one.
* ``sos``: each normalised section mapped by its poles and zeros (matched z, then fitted: :func:`map_section`):
  a root ``r e^{j theta}`` at ``fs0`` becomes ``r^(1/ratio) e^{j theta / ratio}`` at ``fs`` (its time constant
  and frequency kept in seconds and hertz); a root on the negative real axis (a Nyquist root, e.g. a
  bilinear design's zeros at ``z = -1``) stays on it with its radius mapped, and an angle mapped beyond pi is
  folded to pi. The gain is renormalised where the section defines it: at DC unless the section's DC gain
  is below a tenth of its peak (a high-pass or band-pass), else at the peak's frequency (in Hz, below 0.9
  of the lower Nyquist).
* ``fir``: every tap placed by time, tap ``k`` at sample ``round(k * ratio)`` (sparse, velvet and
  scattering taps keep their times; taps landing on one sample add up).
* ``gain``, ``householder``: memoryless, unchanged; ``series``, ``parallel``, ``recursion``: their children.

Above the model's rate, the model has nothing above ``fs0 / 2``: :func:`band_limit` precedes the graph.
The document keeps its name, channels and FLAMO data; ``fs`` becomes the new rate.
"""
from __future__ import annotations

import copy

import numpy as np
from scipy import optimize, signal

from ..common.errors import AdacError
from .document import iter_nodes
from .kinds import KindTable

RELOWER = KindTable("sample-rate lowering")

DC_SHARE = 0.1  # a section whose DC gain is below this share of its peak is normalised at its peak
PEAK_BAND = 0.9  # the peak is searched below this share of the lower Nyquist frequency
GRID = 1024
MAX_FIT_EVALUATIONS = 200  # bounds the fit's cost (unbounded, a low-pass of the test zoo took minutes)
BAND_LIMIT_SECTIONS = 5
BAND_LIMIT_EDGE = 0.95


def map_root(root: complex, ratio: float) -> complex:
    """A pole or zero at ``fs0`` mapped to ``fs = ratio * fs0`` (matched z, see the module docstring)."""
    radius, angle = abs(root), abs(np.angle(root))
    if radius == 0:
        return 0j
    if np.isclose(angle, np.pi, rtol=0, atol=1e-12):
        return complex(-(radius ** (1 / ratio)))
    return radius ** (1 / ratio) * np.exp(1j * np.sign(np.angle(root)) * min(angle / ratio, np.pi))


def _polynomial(roots: list[complex], length: int) -> np.ndarray:
    """Monic real polynomial of ``roots`` (descending powers of z^-1), zero-padded to ``length`` coefficients."""
    coefficients = np.real(np.poly(roots)) if roots else np.ones(1)
    return np.concatenate([coefficients, np.zeros(length - len(coefficients))])


def _matched(section: np.ndarray, ratio: float) -> np.ndarray:
    """Matched-z image of a normalised section: zeros and poles mapped by :func:`map_root`, gain 1."""
    b, a = section[:3], section[3:]
    lead = int(np.argmax(b != 0))  # leading zero coefficients: pure delays of the numerator, kept
    zeros = [map_root(z, ratio) for z in np.roots(b[lead:])]
    poles = [map_root(p, ratio) for p in np.roots(np.trim_zeros(a, "b"))]
    return np.concatenate([np.zeros(lead), _polynomial(zeros, 3 - lead), _polynomial(poles, 3)])


def _log_magnitude(section: np.ndarray, omega: np.ndarray) -> np.ndarray:
    z = np.exp(-1j * np.outer(omega, np.arange(3)))
    with np.errstate(divide="ignore"):
        return np.log(np.abs(z @ section[:3]) + 1e-300) - np.log(np.abs(z @ section[3:]))


def _stable(a1: float, a2: float) -> bool:
    return abs(a2) < 1 and abs(a1) < 1 + a2


def map_section(section, ratio: float) -> np.ndarray:
    """A normalised section ``[b0, b1, b2, 1, a1, a2]`` at ``fs0`` mapped to ``ratio * fs0``; shape (6,).

    The matched-z image (:func:`map_root` on every root), renormalised at DC (or at the peak, see the module
    docstring); then, if the section is stable, its magnitude in Hz fitted to the original's below
    ``PEAK_BAND`` of the lower Nyquist (least squares on the log magnitude weighted by the gain cubed, from
    the matched-z image, and renormalised again): a
    pole far from ``z = 1`` (a low-order damping filter) keeps its response in Hz only approximately under
    matched z. The fit is kept only if it stays stable and improves the match."""
    section = np.asarray(section, dtype=float)
    if not np.any(section[:3]):
        return section.copy()
    omega0 = np.linspace(0, PEAK_BAND * min(1.0, ratio) * np.pi, GRID)  # at fs0; the same Hz at fs: omega0 / ratio
    target = _log_magnitude(section, omega0)
    where = 0 if target[0] >= np.log(DC_SHARE) + target.max() else int(np.argmax(target))
    matched = _matched(section, ratio)
    gain = np.exp(target[where] - _log_magnitude(matched, omega0[where:where + 1] / ratio)[0])
    if not np.isfinite(gain) or gain == 0:
        raise AdacError(f"section {section.tolist()}: its gain vanishes at {ratio:g} x the rate")
    matched[:3] *= gain
    if not _stable(matched[4], matched[5]):
        return matched

    weight = (np.exp(target) / np.exp(target).max()) ** 3

    def residual(x):  # log magnitude weighted by the gain: a loop's decay hangs on the gains near 1
        return weight * (_log_magnitude(np.array([x[0], x[1], x[2], 1.0, x[3], x[4]]), omega0 / ratio) - target)

    fit = optimize.least_squares(residual, np.delete(matched, 3), method="lm", max_nfev=MAX_FIT_EVALUATIONS)
    fitted = np.insert(fit.x, 3, 1.0)
    fitted[:3] *= np.exp(target[where] - _log_magnitude(fitted, omega0[where:where + 1] / ratio)[0])
    better = np.abs(residual(fit.x)).max() < np.abs(residual(np.delete(matched, 3))).max()
    return fitted if better and _stable(fitted[4], fitted[5]) else matched


@RELOWER.register("series", "parallel")
def _relower_children(node, ratio):
    out = dict(node)
    out["children"] = [RELOWER(child, ratio) for child in node["children"]]
    return out


def _line_gain(feedback: dict) -> dict | None:
    """The per-line gain of a loop's feedback path: a diagonal gain node, itself or a child of its series."""
    for node in [feedback] + feedback.get("children", []):
        if node["kind"] == "gain" and node["diagonal"]:
            return node
    return None


@RELOWER.register("recursion")
def _relower_loop(node, ratio):
    out = dict(node)
    out["feedforward"], out["feedback"] = RELOWER(node["feedforward"], ratio), RELOWER(node["feedback"], ratio)
    lines, gain = node["feedforward"], _line_gain(node["feedback"])
    if lines["kind"] == "delay" and lines["diagonal"] and gain is not None and gain["in"] == lines["in"]:
        # an FDN: line n's gain g (dB per pass) re-derived for the rounded length, g^(rounded / exact),
        # so that it still decays by the same dB per second
        exact = np.asarray(lines["samples"], dtype=float) * ratio
        rounded = np.asarray(out["feedforward"]["samples"], dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            power = np.where(exact > 0, rounded / exact, 1.0)
        new_gains = (np.sign(gain["gains"]) * np.abs(gain["gains"]) ** power).tolist()
        out["feedback"] = _replace(out["feedback"], gain["id"], dict(gain, gains=new_gains))
    return out


def _replace(node: dict, node_id: str, new: dict) -> dict:
    if node["id"] == node_id:
        return new
    if "children" in node:
        return dict(node, children=[_replace(child, node_id, new) for child in node["children"]])
    return node


@RELOWER.register("delay", "gain_delay")
def _relower_delay(node, ratio):
    out = copy.deepcopy(node)
    out["samples"] = np.round(np.asarray(node["samples"], dtype=float) * ratio).tolist()
    return out


@RELOWER.register("gain", "householder")
def _relower_memoryless(node, ratio):
    return node


@RELOWER.register("sos")
def _relower_sos(node, ratio):
    out = copy.deepcopy(node)
    sections = np.asarray(node["sections"], dtype=float)  # (K, 6, ...paths)
    paths = sections.reshape(sections.shape[0], 6, -1)
    mapped = np.stack([np.stack([map_section(paths[k, :, p], ratio) for p in range(paths.shape[2])], axis=-1)
                       for k in range(paths.shape[0])])
    out["sections"] = mapped.reshape(sections.shape).tolist()
    return out


@RELOWER.register("fir")
def _relower_fir(node, ratio):
    out = copy.deepcopy(node)
    taps = np.asarray(node["taps"], dtype=float)  # (L, ...paths)
    where = np.round(np.arange(taps.shape[0]) * ratio).astype(int)
    placed = np.zeros((where[-1] + 1,) + taps.shape[1:])
    np.add.at(placed, where, taps)
    out["taps"] = placed.tolist()
    return out


def band_limit(n_channels: int, fs0: int, fs: int, node_id: str) -> dict:
    """A diagonal ``sos`` node: an elliptic low-pass (order 2 x :data:`BAND_LIMIT_SECTIONS`, 0.01 dB ripple up to
    :data:`BAND_LIMIT_EDGE` of ``fs0``'s Nyquist, 100 dB down beyond it) on every channel at ``fs`` Hz:
    the model is defined up to ``fs0 / 2`` only, and at a higher rate it has nothing above."""
    sos = signal.ellip(2 * BAND_LIMIT_SECTIONS, 0.01, 100, BAND_LIMIT_EDGE * fs0 / 2, fs=fs, output="sos")
    sections = np.repeat(sos[:, :, None], n_channels, axis=2)
    return {"id": node_id, "kind": "sos", "path": "adac.band_limit", "in": n_channels, "out": n_channels,
            "diagonal": True, "sections": sections.tolist()}


def relower(ir: dict, fs: int) -> dict:
    """The IR ``ir`` (made at ``ir["fs"]``) lowered again for ``fs`` Hz; the argument is not changed.

    Above the model's rate the graph is preceded by :func:`band_limit` (a new node, id one past the largest).
    At its own rate the document is returned as it is."""
    if fs == ir["fs"]:
        return ir
    out = dict(ir)
    graph = RELOWER(ir["graph"], fs / ir["fs"])
    if fs > ir["fs"]:
        last = max(int(node["id"][1:]) for node, _ in iter_nodes(ir["graph"]))
        limit = band_limit(graph["in"], ir["fs"], fs, f"n{last + 1}")
        graph = {"id": f"n{last + 2}", "kind": "series", "path": "adac.band_limited", "in": graph["in"],
                 "out": graph["out"], "children": [limit, graph]}
    out["graph"] = graph
    out["fs"] = int(fs)
    return out
