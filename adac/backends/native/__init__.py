"""Native backend: the IR's feedback delay networks as a C++ block kernel, the rest of the graph as FAUST code.

FAUST computes sample by sample, so a dense feedback matrix inside a loop is N dot products per sample in
scalar code. An FDN's feedforward path is a bank of integer delay lines (shortest ``D``): over a block of
``B <= D`` samples every line's output is already in its buffer, so the loop runs a block at a time::

    r[t]  = line outputs (read from the past)              q = r . gamma^d   (the rt60 control; else q = r)
    y     = q                                              (the loop's output, on into the graph)
    w[t]  = u[t] + G(q)[t]                                 (u: the loop's input; G the feedback path, here as
                                                            matrix products over the whole block)

The loop's input ``u`` needs the graph before it, its output ``y`` feeds the graph after it, and both may be
anything FAUST realises. So the graph becomes **one** FAUST program in which each kernel loop is cut open:
its output is an extra input of the program (``r``), its input an extra output (``u``, and ``q`` with the rt60
control). Per block the generated class reads ``r`` from the lines, runs the FAUST program, applies ``G`` to
``q`` in C++ and writes ``w = u + G q`` back. The controls, the metadata and the UI are the FAUST program's,
so the class is a drop-in for the one ``faust -lang cpp`` emits from :func:`adac.backends.faust.json_to_faust`.

A kernel loop: a recursion whose feedforward path is a bank of integer delay lines and whose feedback path is
a series of gains (dense, diagonal, Hadamard), Householder reflections and per-line sections, not inside
another loop. Other loops stay in the FAUST program; an IR without a kernel loop is refused
(:class:`NativeUnsupported`), as only FAUST builds it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...common import toolchain
from ...common.errors import AdacError
from ...common.version import __version__
from ...ir import KindTable
from ...ir.fractional import DEFAULT_ORDER
from ...ir.hadamard import hadamard_form
from ...ir.passes import fold_gains, is_delay_bank
from ...ir.sections import svf_parameters
from ..faust import check_ir, program_text
from ..faust.controls import prepare_controls
from ..faust.emit import EmitContext, comment, emit_node, number, route
from ..faust.render import RENDER_ARCH, build_class_renderer, faust_to_cpp

MAX_BLOCK = 64  # samples per kernel block at most (the shortest line bounds it too)


class NativeUnsupported(AdacError):
    """The IR has no loop the kernel realises (the message names the loops and why)."""


# ------------------------------------------------------------------------------------------------ the plan

def kernel_refusal(node: dict) -> str | None:
    """Why the recursion ``node`` is not a kernel loop, or None."""
    if not is_delay_bank(node["feedforward"]):
        return f"{node.get('path') or '<root>'}: the feedforward path is not a bank of integer delay lines"
    return FEEDBACK(node["feedback"], None)


def _contains_loop(node: dict) -> bool:
    if node["kind"] == "recursion":
        return True
    return any(_contains_loop(c) for c in node.get("children", ()))


@dataclass
class KernelLoop:
    """One FDN loop the kernel runs: ``lines`` delay lengths (samples), ``feedback`` the IR of ``G``."""

    node: dict
    lines: list[int]
    feedback: dict

    @property
    def n(self) -> int:
        return len(self.lines)


# ------------------------------------------------------------------------------ the FAUST program around

@dataclass
class _Lifted:
    """A FAUST expression with ``extra_in`` channels after its inputs and ``extra_out`` after its outputs
    (the kernel loops' ends inside it, in the order of :attr:`_Cut.loops`)."""

    expr: str
    n_in: int
    n_out: int
    extra_in: int = 0
    extra_out: int = 0


def _bus(n: int) -> str | None:
    return f"si.bus({n})" if n else None


def _par(*parts: str | None) -> str:
    parts = [p for p in parts if p]
    return parts[0] if len(parts) == 1 else "(" + ", ".join(parts) + ")"


def _permute(n: int, source: list[int]) -> str | None:
    return route(n, np.asarray(source)) if n else None


def _seq(*parts: str | None) -> str:
    return "(" + " : ".join(p for p in parts if p) + ")"


class _Cut:
    """Emits the graph as one FAUST program with each kernel loop cut open (see the module docstring)."""

    def __init__(self, ctx: EmitContext):
        self.ctx = ctx
        self.loops: list[KernelLoop] = []
        self.refusals: list[str] = []

    def lift(self, node: dict) -> _Lifted:
        kind = node["kind"]
        if kind == "recursion":
            refusal = kernel_refusal(node)
            if refusal is None and not self.ctx.loop_depth:
                return self._loop(node)
            self.refusals.append(refusal or f"{node.get('path') or '<root>'}: a loop inside another loop")
        elif kind in ("series", "parallel") and _contains_loop(node):
            return self._series(node) if kind == "series" else self._parallel(node)
        return _Lifted(emit_node(node, self.ctx), node["in"], node["out"])

    def _loop(self, node: dict) -> _Lifted:
        lines = [int(d) for d in np.asarray(node["feedforward"]["samples"], dtype=float)]
        self.loops.append(KernelLoop(node, lines, node["feedback"]))
        n, decay = len(lines), self.ctx.loop_decay
        u, r = [f"u{i}" for i in range(n)], [f"r{i}" for i in range(n)]
        # the loop's output: each line decayed as FAUST's own loop decays it (gamma^d for the whole line)
        y = [f"{r[i]} * {decay}({number(float(d))})" if decay else r[i] for i, d in enumerate(lines)]
        body = y + u + (y if decay else [])  # outputs: y (on into the graph); u, q (to the kernel)
        expr = f"(\\({', '.join(u + r)}).({', '.join(body)}))"
        return _Lifted(self.ctx.define(node, expr), n, n, n, len(body) - n)

    def _series(self, node: dict) -> _Lifted:
        cur = self.lift(node["children"][0])
        for child in node["children"][1:]:
            nxt = self.lift(child)
            if not (cur.extra_in or cur.extra_out or nxt.extra_in or nxt.extra_out):
                cur = _Lifted(_seq(cur.expr, nxt.expr), cur.n_in, nxt.n_out)
                continue
            b, u1, r2, c, u2 = cur.n_out, cur.extra_out, nxt.extra_in, nxt.n_out, nxt.extra_out
            # (b, U1, R2) -> (b, R2, U1); (c, U2, U1) -> (c, U1, U2)
            first = _permute(b + u1 + r2, [*range(b), *range(b + u1, b + u1 + r2), *range(b, b + u1)])
            second = _permute(c + u2 + u1, [*range(c), *range(c + u2, c + u2 + u1), *range(c, c + u2)])
            expr = _seq(_par(cur.expr, _bus(r2)), first, _par(nxt.expr, _bus(u1)), second)
            cur = _Lifted(expr, cur.n_in, c, cur.extra_in + r2, u1 + u2)
        return _Lifted(self.ctx.define(node, cur.expr), cur.n_in, cur.n_out, cur.extra_in, cur.extra_out)

    def _parallel(self, node: dict) -> _Lifted:
        a, b = (self.lift(c) for c in node["children"])
        n = node["in"]
        # (x, Ra, Rb) -> (x, x, Ra, Rb) -> (x, Ra, x, Rb) -> a, b -> (ya, Ua, yb, Ub) -> (ya, yb, Ua, Ub)
        split = _par(f"(si.bus({n}) <: si.bus({n}), si.bus({n}))", _bus(a.extra_in), _bus(b.extra_in))
        feed = _permute(2 * n + a.extra_in + b.extra_in,
                        [*range(n), *range(2 * n, 2 * n + a.extra_in), *range(n, 2 * n),
                         *range(2 * n + a.extra_in, 2 * n + a.extra_in + b.extra_in)])
        ya, ua, yb = a.n_out, a.extra_out, b.n_out
        total = ya + ua + yb + b.extra_out
        gather = _permute(total, [*range(ya), *range(ya + ua, ya + ua + yb), *range(ya, ya + ua),
                                  *range(ya + ua + yb, total)])
        out = node["out"]
        merge = _par(f"(si.bus({ya + yb}) :> si.bus({out}))" if node["sum_output"] else None,
                     None if node["sum_output"] else _bus(ya + yb), _bus(ua + b.extra_out))
        expr = _seq(split, feed, _par(a.expr, b.expr), gather, merge)
        return _Lifted(self.ctx.define(node, expr), n, out, a.extra_in + b.extra_in, ua + b.extra_out)


# ------------------------------------------------------------------------------------------- C++ kernel

def _floats(values) -> str:
    return "{" + ", ".join(f"{float(v)!r}" for v in np.ravel(values)) + "}"


class _Stages:
    """C++ of a feedback path over a block of frames ``x[t * N + i]`` (the data as static members)."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.members: list[str] = []
        self.resets: list[str] = []
        self.code: list[str] = []
        self.count = 0

    def name(self, what: str) -> str:
        self.count += 1
        return f"{self.prefix}_{what}{self.count}"

    def table(self, what: str, values, ctype: str = "adac_real") -> str:
        name = self.name(what)
        self.members.append(f"static constexpr {ctype} {name}[{np.size(values)}] = {_floats(values)};")
        return name

    def state(self, what: str, size: int) -> str:
        name = self.name(what)
        self.members.append(f"adac_real {name}[{size}];")
        self.resets.append(f"std::fill_n({name}, {size}, adac_real(0));")
        return name

    def gain(self, node):
        n_in, n_out = node["in"], node["out"]
        if node["diagonal"]:
            g = self.table("gain", node["gains"])
            self.code.append(f"for (int t = 0; t < n; ++t) for (int i = 0; i < {n_in}; ++i) y[t * {n_out} + i] = "
                             f"{g}[i] * x[t * {n_in} + i];")
            self.code.append("std::swap(x, y);")
            return
        matrix = np.asarray(node["matrix"], dtype=float)
        form = hadamard_form(matrix)
        if form is not None:
            row, col = self.table("row", form.row), self.table("col", form.col)
            sigma = self.table("sigma", form.sigma, "int")
            pi = self.table("pi", form.pi, "int")
            self.code.append(f"for (int t = 0; t < n; ++t) {{ adac_real* a = x + t * {n_in}; adac_real* b = y + t * {n_in};"
                             f" for (int i = 0; i < {n_in}; ++i) b[{sigma}[i]] = {col}[i] * a[i];"
                             f" adac_fwht<{n_in}>(b);"
                             f" for (int i = 0; i < {n_in}; ++i) a[i] = {row}[i] * b[{pi}[i]]; }}")
            return
        # y (n x out) = x (n x in) . M^T: one matrix product over the block (Eigen's blocked GEMM)
        mt = self.table("matrix_t", matrix.T)
        self.code.append(f"adac_rows(y, n, {n_out}).noalias() = adac_rows(x, n, {n_in}) * "
                         f"adac_const_rows({mt}, {n_in}, {n_out});")
        self.code.append("std::swap(x, y);")

    def householder(self, node):
        n = node["in"]
        u, u2 = self.table("u", node["u"]), self.table("u2", 2 * np.asarray(node["u"], dtype=float))
        self.code.append(f"for (int t = 0; t < n; ++t) {{ adac_real* a = x + t * {n}; adac_real s = 0;"
                         f" for (int i = 0; i < {n}; ++i) s += {u}[i] * a[i];"
                         f" for (int i = 0; i < {n}; ++i) a[i] -= {u2}[i] * s; }}")

    def sos(self, node):
        sections = np.asarray(node["sections"], dtype=float)  # (K, 6, N)
        n = node["in"]
        for k in range(sections.shape[0]):
            per_line = [sections[k, :, i] for i in range(n)]
            svf = [svf_parameters(s) if not (s[4] == s[5] == 0) else None for s in per_line]
            if all(p is not None for p in svf):
                a1, a2, g, c0, c1, c2 = (self.table(w, [p[j] for p in svf])
                                         for j, w in enumerate(("a1_", "a2_", "g", "c0_", "c1_", "c2_")))
                ic1, ic2 = self.state("ic1_", n), self.state("ic2_", n)
                self.code.append(
                    f"for (int t = 0; t < n; ++t) for (int i = 0; i < {n}; ++i) {{ adac_real& v = x[t * {n} + i];"
                    f" const adac_real v0 = v, v3 = v0 - {ic2}[i], v1 = {a1}[i] * {ic1}[i] + {a2}[i] * v3,"
                    f" v2 = {ic2}[i] + {g}[i] * v1; {ic1}[i] = 2 * v1 - {ic1}[i]; {ic2}[i] = 2 * v2 - {ic2}[i];"
                    f" v = {c0}[i] * v0 + {c1}[i] * v1 + {c2}[i] * v2; }}")
                continue
            # direct form I (sections no SVF represents, and FIR sections, as FAUST writes them)
            a0 = np.array([s[3] for s in per_line])
            b0, b1, b2 = (self.table(w, [s[j] / s[3] for s in per_line]) for j, w in ((0, "b0_"), (1, "b1_"), (2, "b2_")))
            na1, na2 = (self.table(w, [-s[j] / s[3] for s in per_line]) for j, w in ((4, "na1_"), (5, "na2_")))
            assert np.all(a0 != 0)
            x1, x2, y1, y2 = (self.state(w, n) for w in ("x1_", "x2_", "y1_", "y2_"))
            self.code.append(
                f"for (int t = 0; t < n; ++t) for (int i = 0; i < {n}; ++i) {{ adac_real& v = x[t * {n} + i];"
                f" const adac_real f = {b0}[i] * v + {b1}[i] * {x1}[i] + {b2}[i] * {x2}[i];"
                f" const adac_real o = f + {na1}[i] * {y1}[i] + {na2}[i] * {y2}[i];"
                f" {x2}[i] = {x1}[i]; {x1}[i] = v; {y2}[i] = {y1}[i]; {y1}[i] = o; v = o; }}")


_CLASS = """\
// The kernel of {name}: {loops}; blocks of up to {block} samples (adac.backends.native).
#undef FAUSTCLASS
#define FAUSTCLASS {cls}
#include <Eigen/Core>
#include <algorithm>
#include <vector>

class {cls} : public dsp {{
  private:
    using adac_real = {real};
    using adac_map = Eigen::Map<Eigen::Matrix<adac_real, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;
    using adac_const_map = Eigen::Map<const Eigen::Matrix<adac_real, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;
    static adac_map adac_rows(adac_real* p, int rows, int cols) {{ return adac_map(p, rows, cols); }}
    static adac_const_map adac_const_rows(const adac_real* p, int rows, int cols) {{ return adac_const_map(p, rows, cols); }}
    // Sylvester's Hadamard transform in place (unnormalised): N log2 N additions
    template <int N> static void adac_fwht(adac_real* a) {{
        for (int h = 1; h < N; h *= 2)
            for (int i = 0; i < N; i += 2 * h)
                for (int j = i; j < i + h; ++j) {{ const adac_real s = a[j], d = a[j + h]; a[j] = s + d; a[j + h] = s - d; }}
    }}
    static constexpr int kBlock = {block};
    {graph} fGraph;
    unsigned fWrite = 0;
    FAUSTFLOAT* fIns[{ins}];
    FAUSTFLOAT* fOuts[{outs}];
    adac_real fX[kBlock * {width}], fY[kBlock * {width}];
{members}

  public:
    {cls}() {{
{construct}
    }}
    {cls}(const {cls}&) = delete;
    {cls}& operator=(const {cls}&) = delete;
    void metadata(Meta* m) override {{ fGraph.metadata(m); m->declare("adac_backend", "native"); }}
    int getNumInputs() override {{ return {n_in}; }}
    int getNumOutputs() override {{ return {n_out}; }}
    static void classInit(int sample_rate) {{ {graph}::classInit(sample_rate); }}
    void instanceConstants(int sample_rate) override {{ fGraph.instanceConstants(sample_rate); }}
    void instanceResetUserInterface() override {{ fGraph.instanceResetUserInterface(); }}
    void instanceClear() override {{
        fGraph.instanceClear();
        fWrite = 0;
{clear}
    }}
    void init(int sample_rate) override {{ classInit(sample_rate); instanceInit(sample_rate); }}
    void instanceInit(int sample_rate) override {{
        instanceConstants(sample_rate);
        instanceResetUserInterface();
        instanceClear();
    }}
    {cls}* clone() override {{ return new {cls}(); }}
    int getSampleRate() override {{ return fGraph.getSampleRate(); }}
    void buildUserInterface(UI* ui_interface) override {{ fGraph.buildUserInterface(ui_interface); }}
    void compute(int count, FAUSTFLOAT** inputs, FAUSTFLOAT** outputs) override {{
        for (int done = 0; done < count;) {{
            const int n = std::min(kBlock, count - done);
            // the lines' outputs over the block: all written at least one block ago
{read}
            for (int c = 0; c < {n_in}; ++c) fIns[c] = inputs[c] + done;
            for (int c = 0; c < {n_out}; ++c) fOuts[c] = outputs[c] + done;
            fGraph.compute(n, fIns, fOuts);
            // each loop's feedback over the block, then w = u + G q into its lines
{feedback}
            fWrite += unsigned(n);
            done += n;
        }}
    }}
}};
"""


# The kernel's part per IR kind in a feedback path: ``rule(node, stages)`` adds the node's C++ to ``stages``
# (:class:`_Stages`; None: only checks) and returns None, or returns why the kernel cannot run it.
FEEDBACK = KindTable("native feedback stage")


@FEEDBACK.register("series")
def _feedback_series(node, stages):
    return next((r for r in (FEEDBACK(c, stages) for c in node["children"]) if r), None)


@FEEDBACK.register("gain", "householder", "sos")
def _feedback_stage(node, stages):
    if not node.get("diagonal", True) and node["kind"] == "sos":
        return f"{node.get('path') or '<root>'}: a non-diagonal sos node in the feedback path"
    if stages is not None:
        getattr(stages, node["kind"])(node)
    return None


@FEEDBACK.register("delay", "fir", "gain_delay", "parallel", "recursion")
def _feedback_refused(node, stages):
    return f"{node.get('path') or '<root>'}: a {node['kind']} node in the feedback path (the kernel runs gains, " \
           "Householder reflections and per-line sections there)"


def _loop_code(k: int, loop: KernelLoop, has_q: bool, in_base: int, out_base: int) -> dict[str, list[str]]:
    """C++ pieces of loop ``k``: members, constructor, clear, block read, feedback; its ``r`` channels are the
    graph's inputs from ``in_base``, its ``u`` (then ``q``) channels the graph's outputs from ``out_base``."""
    n, p = loop.n, f"fL{k}"
    sizes = [1 << int(np.ceil(np.log2(d + MAX_BLOCK + 1))) for d in loop.lines]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
    stages = _Stages(f"{p}")
    FEEDBACK(loop.feedback, stages)
    members = [
        f"    // loop {k}: {loop.node.get('path') or '<root>'}, {n} lines",
        f"    static constexpr int {p}_len[{n}] = {{{', '.join(map(str, loop.lines))}}};",
        f"    static constexpr unsigned {p}_mask[{n}] = {{{', '.join(str(s - 1) for s in sizes)}}};",
        f"    static constexpr int {p}_off[{n}] = {{{', '.join(map(str, offsets))}}};",
        f"    std::vector<adac_real> {p}_lines = std::vector<adac_real>({int(sum(sizes))});",
        f"    FAUSTFLOAT {p}_r[{n}][kBlock], {p}_u[{n}][kBlock]" + (f", {p}_q[{n}][kBlock];" if has_q else ";"),
        *("    " + m for m in stages.members),
    ]
    construct = [f"        for (int i = 0; i < {n}; ++i) {{ fIns[{in_base} + i] = {p}_r[i]; fOuts[{out_base} + i] = {p}_u[i];"
                 + (f" fOuts[{out_base + n} + i] = {p}_q[i];" if has_q else "") + " }"]
    clear = [f"        std::fill({p}_lines.begin(), {p}_lines.end(), adac_real(0));", *("        " + r for r in stages.resets)]
    read = [f"            for (int i = 0; i < {n}; ++i) {{ const adac_real* line = {p}_lines.data() + {p}_off[i];"
            f" const unsigned m = {p}_mask[i], at = fWrite - unsigned({p}_len[i]);"
            f" for (int t = 0; t < n; ++t) {p}_r[i][t] = FAUSTFLOAT(line[(at + unsigned(t)) & m]); }}"]
    q = f"{p}_q" if has_q else f"{p}_r"
    feedback = [
        "            {",
        "                adac_real* x = fX; adac_real* y = fY; (void) y;",
        f"                for (int t = 0; t < n; ++t) for (int i = 0; i < {n}; ++i) x[t * {n} + i] = adac_real({q}[i][t]);",
        *("                " + c for c in stages.code),
        f"                for (int i = 0; i < {n}; ++i) {{ adac_real* line = {p}_lines.data() + {p}_off[i];"
        f" const unsigned m = {p}_mask[i];"
        f" for (int t = 0; t < n; ++t) line[(fWrite + unsigned(t)) & m] = x[t * {n} + i] + adac_real({p}_u[i][t]); }}",
        "            }",
    ]
    return {"members": members, "construct": construct, "clear": clear, "read": read, "feedback": feedback}


def _widths(node: dict) -> list[int]:
    return [node["in"], node["out"], *(w for c in node.get("children", ()) for w in _widths(c))]


def json_to_native(ir: dict, controls: dict | None = None, *, class_name: str = "mydsp", double: bool = False,
                   faust_flags=(), fractional_order: int = DEFAULT_ORDER, delay_limits: dict | None = None,
                   validate: bool = True) -> str:
    """C++ of ``class <class_name> : public dsp``: the IR's FDN loops as a block kernel, the rest as FAUST code.

    A drop-in for the class ``faust -lang cpp -cn <class_name>`` emits from
    :func:`adac.backends.faust.json_to_faust` ``(ir, controls)``: the same inputs and outputs, the same UI
    (the controls are the FAUST program's) and metadata (plus ``adac_backend: native``); ``compute`` takes any
    count. Like FAUST's class text it needs ``faust/gui/meta.h``, ``faust/gui/UI.h`` and ``faust/dsp/dsp.h``
    included before it, and Eigen's headers on the include path (``pkg-config --cflags eigen3``).

    Args:
        ir: IR document; ``controls``, ``fractional_order``, ``delay_limits``, ``validate``: as for json_to_faust.
        class_name: the C++ class (the FAUST program around the kernel is ``<class_name>_graph``).
        double: the kernel and the FAUST program in double precision (``faust -double``).
        faust_flags: extra ``faust`` options for the program around the kernel (e.g. ``("-mcd", "0")``).

    Raises:
        NativeUnsupported: no loop of the IR is a kernel loop (see the module docstring); the message lists why.
    """
    check_ir(ir, validate=validate, delay_limits=delay_limits, fractional_order=fractional_order)
    ctx = EmitContext(fractional_order=fractional_order)
    wrap = prepare_controls(ir, controls, ctx) if controls else None
    cut = _Cut(ctx)
    model = cut.lift(fold_gains(ir["graph"]))
    if not cut.loops:
        why = "; ".join(cut.refusals) or "the graph has no loop"
        raise NativeUnsupported(f"IR of {ir.get('name', '?')!r}: no loop the native kernel realises ({why})")
    process = wrap(model.expr, model.extra_in, model.extra_out) if wrap else model.expr
    graph = f"{class_name}_graph"
    program = program_text(ir, ctx.definitions, process)
    graph_cpp = faust_to_cpp(program, double=double, extra_flags=tuple(faust_flags), class_name=graph)
    has_q = ctx.loop_decay is not None
    n_in, n_out = ir["input_channels"], ir["output_channels"]
    parts: dict[str, list[str]] = {k: [] for k in ("members", "construct", "clear", "read", "feedback")}
    in_base, out_base = n_in, n_out
    for k, loop in enumerate(cut.loops):
        for key, lines in _loop_code(k, loop, has_q, in_base, out_base).items():
            parts[key] += lines
        in_base += loop.n
        out_base += loop.n * (2 if has_q else 1)
    block = int(min(MAX_BLOCK, *(min(loop.lines) for loop in cut.loops)))
    kernel = _CLASS.format(
        name=comment(ir["name"]), cls=class_name, graph=graph,
        real="double" if double else "float", block=block, ins=in_base, outs=out_base,
        width=max(max(_widths(loop.feedback)) for loop in cut.loops), n_in=n_in, n_out=n_out,
        loops=", ".join(f"{loop.n} lines" for loop in cut.loops),
        **{k: "\n".join(v) for k, v in parts.items()})
    return graph_cpp + "\n" + kernel


def native_to_cpp(ir: dict, controls: dict | None = None, *, architecture: Path | None = None, **options) -> str:
    """:func:`json_to_native` inside a FAUST architecture file (its ``<<includeIntrinsic>>`` and
    ``<<includeclass>>`` markers replaced), like :func:`adac.backends.faust.render.faust_to_cpp` with one."""
    cls = json_to_native(ir, controls, **options)
    if architecture is None:
        return cls
    text = Path(architecture).read_text()
    return text.replace("<<includeIntrinsic>>", "").replace("<<includeclass>>", cls)


def build_native_renderer(ir: dict, controls: dict | None = None, **options) -> Path:
    """A renderer of the native class (cached; see :func:`adac.backends.faust.render.build_class_renderer`), for
    :func:`adac.backends.faust.render.impulse_responses` and :func:`~adac.backends.faust.render.process_signal`;
    ``options``: :func:`json_to_native`'s."""
    key = json.dumps([ir, controls, options, __version__], sort_keys=True)
    return build_class_renderer(key, lambda: native_to_cpp(ir, controls, architecture=RENDER_ARCH, **options),
                                include_dirs=(toolchain.eigen_include(),))
