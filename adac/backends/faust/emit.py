"""FAUST backend: IR -> FAUST source. Reads only the IR.

Each IR node kind is one row of :data:`EMIT`. Every node becomes one FAUST
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

import math
import re
from dataclasses import dataclass, field

import numpy as np

from ...common.errors import InvalidParameterError
from ...ir import KindTable
from ...ir.fractional import DEFAULT_ORDER, lagrange
from ...ir.hadamard import HadamardForm, hadamard_form
from ...ir.passes import delay_free_error, is_delay_bank, take_unit_delay
from ...ir.sections import svf_parameters

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


FLOAT32_MAX = float(np.finfo(np.float32).max)


class UnrepresentableConstant(ValueError):
    """A constant the code cannot hold: inf or NaN (no FAUST literal writes them), or beyond float32's range
    (FAUST's default build would store inf, and its interval analysis fails on such products).
    :func:`emit_node` names the node."""


def number(value: float) -> str:
    """A FAUST float literal that round-trips the float64 value exactly."""
    if not math.isfinite(float(value)) or abs(float(value)) > FLOAT32_MAX:
        raise UnrepresentableConstant(f"a constant of the code is {float(value)!r}, beyond float32's range")
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
    ``taken``: per node id, the samples loop compensation took from it (:func:`adac.ir.passes.take_unit_delay`).
    """

    fractional_order: int = DEFAULT_ORDER
    loop_decay: str | None = None
    definitions: list[str] = field(default_factory=list)
    loop_depth: int = 0
    taken: dict[str, int] = field(default_factory=dict)  # node id -> samples its loop's ``~`` supplies

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

EMIT = KindTable("faust emission")


@EMIT.register("series")
def emit_series(node, ctx):
    return "(" + " : ".join(emit_node(c, ctx) for c in node["children"]) + ")"


@EMIT.register("parallel")
def emit_parallel(node, ctx):
    a, b = (emit_node(c, ctx) for c in node["children"])
    if node["sum_output"]:
        return f"(si.bus({node['in']}) <: {a}, {b} :> si.bus({node['out']}))"
    return f"(si.bus({node['in']}) <: {a}, {b})"


def _emit_shortened(path: dict, ctx: EmitContext) -> str | None:
    """``path`` less one sample of delay on every channel, emitted (the taken samples still decay with
    their elements while it is written: ``ctx.taken``), or None if the path has no such delay."""
    shortened = take_unit_delay(path)
    if shortened is None:
        return None
    node, taken = shortened
    outer = ctx.taken
    ctx.taken = {key: outer.get(key, 0) + taken.get(key, 0) for key in outer.keys() | taken.keys()}
    try:
        return emit_node(node, ctx)
    finally:
        ctx.taken = outer


@EMIT.register("recursion")
def emit_recursion(node, ctx):
    n_in = node["in"]
    ctx.loop_depth += 1
    try:
        if is_delay_bank(node["feedforward"]):
            # written on the lines' input w = x + G F' w': the lines are the loop's only state
            f_short, g = _emit_shortened(node["feedforward"], ctx), emit_node(node["feedback"], ctx)
            return f"((adac_loopsum({n_in}) ~ ({f_short} : {g})) : {emit_delay(node['feedforward'], ctx)})"
        g = _emit_shortened(node["feedback"], ctx)
        if g is not None:
            return f"((adac_loopsum({n_in}) : {emit_node(node['feedforward'], ctx)}) ~ {g})"
        f = _emit_shortened(node["feedforward"], ctx)
        if f is not None:
            return f"(par(i, {n_in}, mem) : ((adac_loopsum({n_in}) : {f}) ~ {emit_node(node['feedback'], ctx)}))"
    finally:
        ctx.loop_depth -= 1
    raise delay_free_error(node)


@EMIT.register("delay")
def emit_delay(node, ctx):
    samples, taken = np.asarray(node["samples"], dtype=float), ctx.taken.get(node["id"], 0)
    if node["diagonal"]:
        return _diagonal([_delay_expr(d, ctx, taken) for d in samples])
    return _rows([[_delay_expr(d, ctx, taken) for d in row] for row in samples], node["in"])


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


def route(n: int, source: np.ndarray) -> str | None:
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
    stages.append(route(n, np.argsort(form.sigma)))  # transform input sigma[b] takes column b
    stages.append(_fwht(n))
    stages.append(route(n, form.pi))  # output a takes transform output pi[a]
    if np.any(form.row != 1):
        stages.append(_diagonal([_gain_expr(r) for r in form.row]))
    return "(" + " : ".join(s for s in stages if s is not None) + ")"


@EMIT.register("gain")
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


@EMIT.register("householder")
def emit_householder(node, ctx):
    # U x = x - 2 u (u^T x): O(N) instead of the dense O(N^2) product.
    n, u = node["in"], node["u"]
    dot = "(" + ", ".join(_gain_expr(x) or "!" for x in u) + " :> _)" if any(u) else f"(si.block({n}), 0)"
    spread = "(_ <: " + ", ".join(f"*({number(2 * x)})" for x in u) + ")"
    return f"(si.bus({n}) <: si.bus({n}), ({dot} : {spread}) : ro.interleave({n}, 2) : par(i, {n}, -))"


@EMIT.register("fir")
def emit_fir(node, ctx):
    taps, taken = np.asarray(node["taps"], dtype=float), ctx.taken.get(node["id"], 0)
    if node["diagonal"]:
        return _diagonal([_fir_expr(taps[:, n], ctx, taken) for n in range(node["in"])])
    return _rows([[_fir_expr(taps[:, m, n], ctx, taken) for n in range(node["in"])] for m in range(node["out"])],
                 node["in"])


@EMIT.register("sos")
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


@EMIT.register("gain_delay")
def emit_gain_delay(node, ctx):
    gains, samples, taken = np.asarray(node["gains"], float), np.asarray(node["samples"], float), ctx.taken.get(node["id"], 0)
    if node["diagonal"]:
        return _diagonal([_gain_delay_expr(g, d, ctx, taken) for g, d in zip(gains, samples)])
    return _rows([[_gain_delay_expr(g, d, ctx, taken) for g, d in zip(gr, dr)] for gr, dr in zip(gains, samples)],
                 node["in"])


def emit_node(node: dict, ctx: EmitContext) -> str:
    try:
        expression = EMIT(node, ctx)
    except UnrepresentableConstant as exc:  # raised by this node's own constants (inner nodes raise AdacErrors)
        raise InvalidParameterError(f"{node.get('path') or '<root>'}: {node['kind']}: {exc}: its values are too large "
                                    "for the code (scale the model)") from None
    return ctx.define(node, expression)


# ---------------------------------------------------------------------------
