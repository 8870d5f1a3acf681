"""FAUST backend: IR -> FAUST source. Reads only the IR.

Each IR node kind is one row of :data:`EMITTERS`. Every node becomes one FAUST
definition named ``n<id>_<path>``: the ``n<digits>_`` prefix keeps generated
names unique and clear of FAUST keywords and library prefixes (``process``,
``ma``, ``fi``, ``de``, ...) whatever the model's attribute names are. Helper
definitions are inlined with an ``adac_`` prefix, so the ``.dsp`` is
self-contained (only ``stdfaust.lib`` is imported).

Loops: FLAMO's ``Recursion`` is the closed loop ``y = F(x + G y)`` with no
implicit delay, while FAUST's ``A ~ B`` delays the feedback by one sample. The
sample is taken back *per loop* from a delay element inside that loop: a
uniform one-sample delay commutes with every LTI block, so removing one sample
from a delay on the loop's path (all channels) and letting ``~`` add it back is
exact. Three shapes, cheapest first:

* ``F`` is a bank of integer delay lines (an FDN): the loop is written on the
  lines' input ``w = x + G F' w'`` with ``F = z^-1 F'``, and the output is
  ``F w``. FAUST reads both ``F' w'`` and ``F w`` from the one buffer of ``w``,
  so each line is one buffer, one write and one read per sample.
* a delay in the feedback path: ``(x + G' y') : F`` with ``G = z^-1 G'``.
* a delay elsewhere in the feedforward path: as above with the loop input
  pre-delayed by one sample.

A loop without such a delay is delay-free and refused.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import __version__
from .errors import AdacError
from .fractional import DEFAULT_ORDER, lagrange
from .ir import validate_ir

HELPERS = """\
// Second-order section as a topology-preserving state-variable filter (Zavalishin/Simper):
// low coefficient sensitivity, so low-frequency, high-Q sections stay accurate in float32.
// a1 = 1/(1 + g(g + k)), a2 = g a1; y = c0 v0 + c1 v1 + c2 v2. v2 = ic2 + g v1 (rather than
// ic2 + a2 ic1 + a3 v3: the same filter) takes two operations fewer per section.
adac_svf(a1, a2, g, c0, c1, c2) = (tick ~ (_, _)) : (!, !, _)
with {
  tick(ic1, ic2, v0) = 2 * v1 - ic1, 2 * v2 - ic2, c0 * v0 + c1 * v1 + c2 * v2
  with {
    v3 = v0 - ic2;
    v1 = a1 * ic1 + a2 * v3;
    v2 = ic2 + g * v1;
  };
};
// y = b0 x + b1 x' + b2 x'' - a1 y' - a2 y'' (direct form I; na1 = -a1, na2 = -a2), for
// sections an SVF cannot represent (a pole on or outside the unit circle).
adac_biquad(b0, b1, b2, na1, na2) = (_ <: *(b0), (mem : *(b1)), (mem : mem : *(b2)) :> _)
                                    : (+ ~ (_ <: *(na1), (mem : *(na2)) :> _));
// sum of the loop feedback (first n inputs) and the external input (last n)
adac_loopsum(n) = ro.interleave(n, 2) : par(i, n, +);
"""


def number(value: float) -> str:
    """A FAUST float literal that round-trips the float64 value exactly."""
    text = repr(float(value))
    mantissa, _, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return mantissa + ("e" + exponent if exponent else "")


def identifier(text: str) -> str:
    return re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", text)).strip("_")[:48]


def comment(text: str) -> str:
    """Text safe inside a FAUST line comment."""
    return re.sub(r"[^\x20-\x7e]", "?", str(text))[:200]


def string_literal(text: str) -> str:
    """Text safe inside a FAUST string literal (labels, metadata)."""
    return re.sub(r'[^A-Za-z0-9 _.,:;()+\-/]', "_", str(text))[:120]


@dataclass
class EmitContext:
    """State of one emission: definitions written so far and options.

    ``loop_decay``: the name of a FAUST function ``f(d)`` giving the gain of a
    delay of ``d`` samples inside a loop (``gamma^d``); the rt60 control sets it.
    ``fractional_order``: Lagrange order for fractional delays.
    """

    fractional_order: int = DEFAULT_ORDER
    loop_decay: str | None = None
    definitions: list[str] = field(default_factory=list)
    loop_depth: int = 0

    def define(self, node: dict, expr: str) -> str:
        name = f"{node['id']}_{identifier(node.get('path') or node['kind'])}".rstrip("_")
        self.definitions.append(f"// {comment(node.get('path') or '<root>')}: {node['kind']} {node['in']}->{node['out']}\n"
                                f"{name} = {expr};")
        return name

    def decay(self, samples: float) -> str:
        """Factor ``gamma^d`` for a delay of ``samples`` inside a loop, or '' when no rt60 control is active."""
        if self.loop_decay is None or self.loop_depth == 0 or samples == 0:
            return ""
        return f" : *({self.loop_decay}({number(samples)}))"


# ---------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------


def _delay_expr(samples: float, ctx: EmitContext, taken: int = 0) -> str:
    """``samples`` of delay; ``taken``: samples the loop's ``~`` supplies on top (they decay too)."""
    decay = ctx.decay(samples + taken) if samples + taken else ""
    if samples == 0:
        return f"(_{decay})" if decay else "_"
    if samples == round(samples):
        return f"(@({int(round(samples))}){decay})" if decay else f"@({int(round(samples))})"
    base, taps = lagrange(float(samples), ctx.fractional_order)
    terms = [f"*({number(t)})" if k == 0 else f"(@({k}) : *({number(t)}))" for k, t in enumerate(taps)]
    pre = f"@({base}) : " if base else ""
    return f"({pre}(_ <: {', '.join(terms)} :> _){decay})"


def _gain_expr(g: float) -> str | None:
    """None for a zero gain (the path is cut)."""
    if g == 0:
        return None
    return "_" if g == 1 else f"*({number(g)})"


def _rows(paths: list[list[str | None]], n_in: int) -> str:
    """MIMO block from per-path expressions ``paths[out][in]`` (None = no path)."""
    rows = []
    for row in paths:
        if all(p is None for p in row):
            rows.append(f"(si.block({n_in}), 0)")
        else:
            rows.append("(" + ", ".join(p if p is not None else "!" for p in row) + " :> _)")
    if n_in == 1 and len(rows) == 1:
        return rows[0]
    return f"(si.bus({n_in}) <: {', '.join(rows)})"


def _diagonal(paths: list[str | None]) -> str:
    return "(" + ", ".join(p if p is not None else "*(0.0)" for p in paths) + ")"


def _fir_expr(taps: np.ndarray, ctx: EmitContext, taken: int = 0) -> str | None:
    terms = []
    for k, h in enumerate(taps):
        if h == 0:
            continue
        delay = _delay_expr(float(k), ctx, taken)
        gain = _gain_expr(float(h))
        terms.append(gain if delay == "_" else (delay if gain == "_" else f"({delay} : {gain})"))
    if not terms:
        return None
    return terms[0] if len(terms) == 1 else f"(_ <: {', '.join(terms)} :> _)"


def svf_parameters(section) -> tuple[float, ...] | None:
    """TPT state-variable realisation ``(a1, a2, g, c0, c1, c2)`` of a normalised section (``adac_svf``'s arguments).

    Every section with both poles strictly inside the unit circle maps exactly:
    with ``g^2 = (1 + a1 + a2) / (1 - a1 + a2)`` and ``k = 2 (1 - a2) / (g (1 - a1 + a2))``
    its denominator is the bilinear SVF's, and the numerator splits into low-,
    band- and high-pass outputs. Returns None when no SVF exists.
    """
    b0, b1, b2, _a0, a1, a2 = (float(v) for v in section)
    if not (abs(a2) < 1 and abs(a1) < 1 + a2):
        return None
    g = ((1 + a1 + a2) / (1 - a1 + a2)) ** 0.5
    k = 2 * (1 - a2) / (g * (1 - a1 + a2))
    scale = 4 / (1 - a1 + a2)  # the SVF denominator's a0
    nb0, nb1, nb2 = b0 * scale, b1 * scale, b2 * scale
    m_lp, m_bp, m_hp = (nb0 + nb1 + nb2) / (4 * g * g), (nb0 - nb2) / (2 * g), (nb0 - nb1 + nb2) / 4
    a1_svf = 1 / (1 + g * (g + k))
    return a1_svf, g * a1_svf, g, m_hp, m_bp - k * m_hp, m_lp - m_hp


def _svf_section(a1: float, a2: float, g: float, c0: float, c1: float, c2: float) -> np.ndarray:
    """The normalised section ``adac_svf(a1, a2, g, c0, c1, c2)`` computes, for any constants.

    State space of one tick, states ``(ic1, ic2)``: ``v1 = a1 ic1 - a2 ic2 + a2 v0``,
    ``v2 = ic2 + g v1``, next states ``2 v1 - ic1`` and ``2 v2 - ic2``; then
    ``H = D + C (zI - A)^-1 B`` written out for 2 x 2.
    """
    a = np.array([[2 * a1 - 1, -2 * a2], [2 * g * a1, 1 - 2 * g * a2]])
    b = np.array([2 * a2, 2 * g * a2])
    c = np.array([c1 * a1 + c2 * g * a1, -c1 * a2 + c2 * (1 - g * a2)])
    d = c0 + c1 * a2 + c2 * g * a2
    trace, det = a[0, 0] + a[1, 1], a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]
    constant = -c[0] * a[1, 1] * b[0] + c[0] * a[0, 1] * b[1] + c[1] * a[1, 0] * b[0] - c[1] * a[0, 0] * b[1]
    return np.array([d, -d * trace + c @ b, d * det + constant, 1.0, -trace, det])


def emitted_section(section, dtype=np.float32) -> np.ndarray:
    """The section the emitted code realises when its constants are stored in ``dtype``.

    SVF sections are rebuilt from their rounded SVF constants; direct-form ones
    from their rounded coefficients. Used by the stability certificate.
    """
    section = np.asarray(section, dtype=float)
    b0, b1, b2, _a0, a1, a2 = section
    svf = None if a1 == a2 == 0 else svf_parameters(section)
    if svf is None:
        return np.asarray(section.astype(dtype), dtype=float)
    return _svf_section(*(float(dtype(v)) for v in svf))


def _section_expr(section) -> str:
    b0, b1, b2, _a0, a1, a2 = (float(v) for v in section)
    if a1 == a2 == 0:
        return _fir_expr(np.array([b0, b1, b2]), EmitContext()) or "*(0.0)"
    svf = svf_parameters(section)
    if svf is not None:
        return "adac_svf(" + ", ".join(number(v) for v in svf) + ")"
    return f"adac_biquad({number(b0)}, {number(b1)}, {number(b2)}, {number(-a1)}, {number(-a2)})"


def _sos_expr(sections: np.ndarray) -> str | None:
    """Cascade of normalised sections, shape (K, 6); None if the numerator vanishes."""
    if any(s[0] == s[1] == s[2] == 0 for s in sections):
        return None
    stages = [e for e in (_section_expr(s) for s in sections) if e != "_"]
    return "(" + " : ".join(stages) + ")" if stages else "_"


# ---------------------------------------------------------------------------
# emitters: one per IR kind
# ---------------------------------------------------------------------------


def _as_matrix(node: dict) -> np.ndarray:
    return np.diag(node["gains"]) if node["diagonal"] else np.asarray(node["matrix"], dtype=float)


def _foldable(a: dict, b: dict) -> bool:
    """Two neighbouring gain nodes that one product can replace at no extra cost."""
    if a["kind"] != "gain" or b["kind"] != "gain":
        return False
    if a["diagonal"] and b["diagonal"]:
        return True
    dense = [n for n in (a, b) if not n["diagonal"]]
    if len(dense) != 1:
        return False
    if hadamard_form(dense[0]["matrix"]) is not None:
        # a Hadamard matrix keeps its fast form with the diagonal as its row (or column) factors;
        # a zero gain would turn it into a dense matrix with a zero row
        return all(g != 0 for g in (a if a["diagonal"] else b)["gains"])
    return True


def fold_gains(node: dict) -> dict:
    """The graph with neighbouring gain nodes of every series folded into one (recursively).

    Loops are left as they are: there a per-line gain saves only N of the matrix's N^2
    products, and next to its delay line it lets the certificate bound each line's decay
    on its own (see adac.certify).
    """
    if node["kind"] == "recursion":
        return node
    out = dict(node)
    if "children" in node:
        children = [fold_gains(c) for c in node["children"]]
        if node["kind"] == "series":
            merged = [children[0]]
            for child in children[1:]:
                prev = merged[-1]
                if _foldable(prev, child):
                    product = _as_matrix(child) @ _as_matrix(prev)  # prev acts first
                    both_diagonal = prev["diagonal"] and child["diagonal"]
                    merged[-1] = {"id": prev["id"], "kind": "gain", "path": f"{prev.get('path', '')}+{child.get('path', '')}",
                                  "in": prev["in"], "out": child["out"], "diagonal": both_diagonal,
                                  **({"gains": np.diag(product).tolist()} if both_diagonal else {"matrix": product.tolist()})}
                else:
                    merged.append(child)
            children = merged
        out["children"] = children
    return out


def emit_series(node, ctx):
    return "(" + " : ".join(emit(c, ctx) for c in node["children"]) + ")"


def emit_parallel(node, ctx):
    a, b = (emit(c, ctx) for c in node["children"])
    if node["sum_output"]:
        return f"(si.bus({node['in']}) <: {a}, {b} :> si.bus({node['out']}))"
    return f"(si.bus({node['in']}) <: {a}, {b})"


def _is_delay_bank(node: dict) -> bool:
    """Integer delay lines, one per channel, each at least one sample long."""
    if node["kind"] != "delay" or not node["diagonal"]:
        return False
    samples = np.asarray(node["samples"], dtype=float)
    return bool(np.all(samples >= 1) and np.all(samples == np.round(samples)))


def emit_recursion(node, ctx):
    n_in = node["in"]
    ctx.loop_depth += 1
    try:
        if _is_delay_bank(node["feedforward"]):
            # written on the lines' input w = x + G F' w': the lines are the loop's only state
            lines = take_unit_delay(node["feedforward"])
            f_short, g = emit(lines, ctx), emit(node["feedback"], ctx)
            return f"((adac_loopsum({n_in}) ~ ({f_short} : {g})) : {emit_delay(node['feedforward'], ctx)})"
        feedback = take_unit_delay(node["feedback"])
        if feedback is not None:
            f, g = emit(node["feedforward"], ctx), emit(feedback, ctx)
            return f"((adac_loopsum({n_in}) : {f}) ~ {g})"
        feedforward = take_unit_delay(node["feedforward"])
        if feedforward is not None:
            f, g = emit(feedforward, ctx), emit(node["feedback"], ctx)
            return f"(par(i, {n_in}, mem) : ((adac_loopsum({n_in}) : {f}) ~ {g}))"
    finally:
        ctx.loop_depth -= 1
    raise AdacError(f"{node.get('path') or '<root>'}: delay-free loop: neither the feedback nor the feedforward path has a "
                    "delay of at least one sample on every channel, so the loop cannot run sample by sample")


def emit_delay(node, ctx):
    samples, taken = np.asarray(node["samples"], dtype=float), node.get("taken", 0)
    if node["diagonal"]:
        return _diagonal([_delay_expr(d, ctx, taken) for d in samples])
    return _rows([[_delay_expr(d, ctx, taken) for d in row] for row in samples], node["in"])


HADAMARD_RTOL = 1e-12  # the fast form is used only when it reproduces the matrix to double precision


@dataclass(frozen=True)
class HadamardForm:
    """``matrix[a, b] == row[a] * col[b] * H[pi[a], sigma[b]]``, ``H`` Sylvester's Hadamard matrix (+-1 entries)."""

    row: np.ndarray
    col: np.ndarray
    pi: np.ndarray
    sigma: np.ndarray


def _sylvester_labels(signs: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(pi, sigma)`` with ``signs == H[pi][:, sigma]``, or None; ``signs``' first row and column are +1.

    The rows of a matrix equal to Sylvester's ``H`` up to row and column permutations form
    the group Z_2^k under elementwise products: k = log2(n) generator rows fix the row
    labels (bit m for generator m), and the generators' signs in a column give its label.
    """
    n = signs.shape[0]
    k = n.bit_length() - 1
    span = {signs[0].tobytes(): 0}
    generators: list[int] = []
    for a in range(1, n):
        if signs[a].tobytes() in span:
            continue
        if len(generators) == k:
            return None
        bit = 1 << len(generators)
        generators.append(a)
        span.update({(np.frombuffer(v, dtype=signs.dtype) * signs[a]).tobytes(): mask | bit for v, mask in list(span.items())})
    if len(span) != n:
        return None
    pi = np.array([span.get(signs[a].tobytes(), -1) for a in range(n)])
    sigma = np.zeros(n, dtype=int)
    for m, g in enumerate(generators):
        sigma |= (signs[g] < 0).astype(int) << m
    from scipy.linalg import hadamard

    if sorted(pi) != list(range(n)) or sorted(sigma) != list(range(n)):
        return None
    if not np.array_equal(hadamard(n)[np.ix_(pi, sigma)], signs):
        return None
    return pi, sigma


def hadamard_form(matrix) -> HadamardForm | None:
    """The fast-transform factors of ``matrix``, detected from its values, or None.

    Accepts any square matrix equal, to ``HADAMARD_RTOL`` relative, to Sylvester's
    Hadamard matrix with rows and columns permuted and scaled by nonzero factors
    (signs, ``1/sqrt(N)``, folded diagonal gains): FLAMO's ``hadamard`` Matrix, but also
    a signed or reordered one written out as a dense matrix. The factors are
    normalised so that one side is +-1 whenever the matrix allows it: the scaling
    costs N multiplications (on the outputs, or on the inputs for ``H diag(g)``)
    and sign flips.
    """
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        return None
    n = m.shape[0]
    if n < 2 or n & (n - 1) or not np.all(np.isfinite(m)) or np.any(m == 0):
        return None
    row = m[:, 0] * np.sign(m[0, 0])
    col = m[0] / abs(m[0, 0])
    if np.all(np.abs(row) == abs(row[0])) and not np.all(np.abs(col) == 1):
        row, col = np.sign(row), col * abs(row[0])  # column gains (H diag(g)): scale the inputs, not both sides
    ratio = m / np.outer(row, col)
    if np.abs(np.abs(ratio) - 1).max() > HADAMARD_RTOL:
        return None
    signs = np.where(ratio > 0, 1, -1).astype(np.int8)
    labels = _sylvester_labels(signs)
    if labels is None:
        return None
    pi, sigma = labels
    from scipy.linalg import hadamard

    if not np.allclose(np.outer(row, col) * hadamard(n)[np.ix_(pi, sigma)], m, rtol=HADAMARD_RTOL, atol=0):
        return None
    return HadamardForm(row=row, col=col, pi=pi, sigma=sigma)


def hadamard_scale(matrix) -> float | None:
    """``c`` if ``matrix == c * H`` in Sylvester's (FLAMO's) ordering, else None."""
    form = hadamard_form(matrix)
    if form is None or not (np.all(form.col == 1) and np.all(form.row == form.row[0])):
        return None
    if not (np.array_equal(form.pi, np.arange(len(form.pi))) and np.array_equal(form.sigma, form.pi)):
        return None
    return float(form.row[0])


def _fwht(n: int) -> str:
    """Sylvester's ``H_n`` (unscaled) as log2(n) butterfly stages: N log2 N additions.

    ``H_2n = [[H_n, H_n], [H_n, -H_n]]``: two half transforms, then n sums and n
    differences. Each butterfly output goes through ``attach(_, 0)``, which FAUST
    compiles to nothing but which stops its normaliser from flattening the stages
    into N dense sums of N terms (without it the C++ has O(N^2) additions).
    """
    if n == 1:
        return "_"
    half, h = _fwht(n // 2), n // 2
    return (f"(({half}, {half}) <: (ro.interleave({h}, 2) : par(i, {h}, (+ : attach(_, 0)))), "
            f"(ro.interleave({h}, 2) : par(i, {h}, (- : attach(_, 0)))))")


def _route(n: int, source: np.ndarray) -> str | None:
    """Output ``j`` takes input ``source[j]``; None for the identity."""
    if np.array_equal(source, np.arange(n)):
        return None
    return f"route({n}, {n}, " + ", ".join(f"({int(s) + 1}, {j + 1})" for j, s in enumerate(source)) + ")"


def _fast_hadamard(form: HadamardForm) -> str:
    """``y = diag(row) P_pi H P_sigma diag(col) x`` as a fast Walsh-Hadamard transform."""
    n = len(form.row)
    stages = []
    if np.any(form.col != 1):
        stages.append(_diagonal([_gain_expr(c) for c in form.col]))
    stages.append(_route(n, np.argsort(form.sigma)))  # transform input sigma[b] takes column b
    stages.append(_fwht(n))
    stages.append(_route(n, form.pi))  # output a takes transform output pi[a]
    if np.any(form.row != 1):
        stages.append(_diagonal([_gain_expr(r) for r in form.row]))
    return "(" + " : ".join(s for s in stages if s is not None) + ")"


def emit_gain(node, ctx):
    if node["diagonal"]:
        return _diagonal([_gain_expr(g) for g in node["gains"]])
    form = hadamard_form(node["matrix"])
    if form is not None:
        # fast Walsh-Hadamard transform: N log N additions and N multiplications instead of N^2 of each
        return _fast_hadamard(form)
    return _dense_matrix(np.asarray(node["matrix"], dtype=float))


def _dense_matrix(matrix: np.ndarray) -> str:
    """A dense matrix as one lambda ``\\(x0, .., xn).(sum_j m_0j * xj, ..)``: the same sums of products
    as a ``si.bus <: rows :> _`` block diagram, but FAUST compiles it in about half the time at N = 64
    (no N^2-wire split to propagate)."""
    rows = []
    for row in matrix:
        terms = [f"x{j}" if g == 1 else f"{number(g)} * x{j}" for j, g in enumerate(row) if g != 0]
        rows.append(" + ".join(terms) if terms else "0")
    return "(\\(" + ", ".join(f"x{j}" for j in range(matrix.shape[1])) + ").(" + ", ".join(rows) + "))"


def emit_householder(node, ctx):
    # U x = x - 2 u (u^T x): O(N) instead of the dense O(N^2) product.
    n, u = node["in"], node["u"]
    dot = "(" + ", ".join(_gain_expr(x) or "!" for x in u) + " :> _)" if any(u) else f"(si.block({n}), 0)"
    spread = "(_ <: " + ", ".join(f"*({number(2 * x)})" for x in u) + ")"
    return f"(si.bus({n}) <: si.bus({n}), ({dot} : {spread}) : ro.interleave({n}, 2) : par(i, {n}, -))"


def emit_fir(node, ctx):
    taps, taken = np.asarray(node["taps"], dtype=float), node.get("taken", 0)
    if node["diagonal"]:
        return _diagonal([_fir_expr(taps[:, n], ctx, taken) for n in range(node["in"])])
    return _rows([[_fir_expr(taps[:, m, n], ctx, taken) for n in range(node["in"])] for m in range(node["out"])],
                 node["in"])


def emit_sos(node, ctx):
    sections = np.asarray(node["sections"], dtype=float)
    if node["diagonal"]:
        return _diagonal([_sos_expr(sections[:, :, n]) for n in range(node["in"])])
    return _rows([[_sos_expr(sections[:, :, m, n]) for n in range(node["in"])] for m in range(node["out"])], node["in"])


def _gain_delay_expr(g: float, d: float, ctx, taken: int = 0) -> str | None:
    gain = _gain_expr(g)
    if gain is None:
        return None
    delay = _delay_expr(d, ctx, taken)
    return gain if delay == "_" else (delay if gain == "_" else f"({delay} : {gain})")


def emit_gain_delay(node, ctx):
    gains, samples, taken = np.asarray(node["gains"], float), np.asarray(node["samples"], float), node.get("taken", 0)
    if node["diagonal"]:
        return _diagonal([_gain_delay_expr(g, d, ctx, taken) for g, d in zip(gains, samples)])
    return _rows([[_gain_delay_expr(g, d, ctx, taken) for g, d in zip(gr, dr)] for gr, dr in zip(gains, samples)],
                 node["in"])


EMITTERS: dict[str, Callable[[dict, EmitContext], str]] = {
    "series": emit_series,
    "parallel": emit_parallel,
    "recursion": emit_recursion,
    "delay": emit_delay,
    "gain": emit_gain,
    "householder": emit_householder,
    "fir": emit_fir,
    "sos": emit_sos,
    "gain_delay": emit_gain_delay,
}


def emit(node: dict, ctx: EmitContext) -> str:
    return ctx.define(node, EMITTERS[node["kind"]](node, ctx))


# ---------------------------------------------------------------------------
# loop compensation: take one sample out of a delay on every channel of a path
# ---------------------------------------------------------------------------


def _shorter(node: dict) -> dict | None:
    kind = node["kind"]
    if kind in ("delay", "gain_delay"):
        samples = np.asarray(node["samples"], dtype=float)
        if samples.min() < 1:
            return None
        out = copy.deepcopy(node)
        out["samples"] = (samples - 1).tolist()
        out["taken"] = node.get("taken", 0) + 1  # the loop's own sample still decays with this element
        return out
    if kind == "fir":
        taps = np.asarray(node["taps"], dtype=float)
        if taps.shape[0] < 2 or np.any(taps[0] != 0):
            return None
        out = copy.deepcopy(node)
        out["taps"] = taps[1:].tolist()
        out["taken"] = node.get("taken", 0) + 1
        return out
    if kind == "series":
        # the child with the longest shortest delay keeps the most room for interpolators
        candidates = [(i, _shorter(c)) for i, c in enumerate(node["children"])]
        candidates = [(i, c) for i, c in candidates if c is not None]
        if not candidates:
            return None
        i, child = max(candidates, key=lambda ic: _min_delay(node["children"][ic[0]]))
        out = copy.copy(node)
        out["children"] = list(node["children"])
        out["children"][i] = child
        return out
    if kind == "parallel":
        children = [_shorter(c) for c in node["children"]]
        if any(c is None for c in children):
            return None
        out = copy.copy(node)
        out["children"] = children
        return out
    return None


def _min_delay(node: dict) -> float:
    if "samples" in node:
        return float(np.min(node["samples"]))
    return 1.0


def take_unit_delay(node: dict) -> dict | None:
    """``node`` with one sample of delay removed from every channel, or None if it has none to give."""
    return _shorter(node)


# ---------------------------------------------------------------------------


def json_to_faust(config: dict, controls: dict | None = None, *, fractional_order: int = DEFAULT_ORDER) -> str:
    """FAUST source for an IR.

    Args:
        config: IR document (validated here).
        controls: macro-controls (rt60, dry_wet, pre_delay); see :mod:`adac.controls`.
        fractional_order: odd Lagrange order for fractional delays.

    Returns:
        str: a self-contained ``.dsp`` whose ``process`` has the IR's input and output channels.
    """
    validate_ir(config, source=f"IR of {config.get('name', '?')!r}" if isinstance(config, dict) else "IR")
    if fractional_order < 1 or fractional_order % 2 == 0:
        raise AdacError(f"fractional_order must be a positive odd integer, got {fractional_order}")
    ctx = EmitContext(fractional_order=fractional_order)
    wrap = None
    if controls:
        from .controls import prepare_controls  # the macro-controls issue plugs in here

        wrap = prepare_controls(config, controls, ctx)
    model = emit(fold_gains(config["graph"]), ctx)
    process = wrap(model) if wrap else model
    name = string_literal(config["name"])
    header = [
        f'declare name "{name}";',
        f'declare adac_version "{__version__}";',
        f'declare adac_ir_version "{config["version"]}";',
        f"// generated by adac from the IR of {comment(config['name'])}: fs = {config['fs']} Hz, "
        f"{config['input_channels']} in, {config['output_channels']} out",
        'import("stdfaust.lib");',
        "",
        HELPERS,
    ]
    return "\n".join(header + ctx.definitions + ["", f"process = {process};", ""])
