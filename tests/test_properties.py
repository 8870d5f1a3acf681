"""Property-based tests (hypothesis) in the default run.

1. Random schema-valid IR documents (``ir_strategies.ir_documents``: every node kind, nesting, loops,
   extreme but valid values) through ``validate_ir`` -> ``certify`` -> ``json_to_faust`` -> the FAUST
   compiler: each one either compiles with the channel counts it declares or is refused with a clean
   :class:`adac.AdacError`; any other exception is a failure. The FAUST compiler runs on every emitted
   program, in batches (one ``faust`` call per batch: each program in its own ``environment``, composed as
   ``si.bus(in) : program : si.bus(out)``, which FAUST compiles only if the program has exactly the declared
   channel counts); a batch that fails is compiled program by program to name the culprit. A sample is also
   compiled alone, unmodified, and its C++ ``getNumInputs``/``getNumOutputs`` read back.
2. Random small FLAMO models built from the supported classes (chains, parallel branches, FDN loops)
   through the whole compile-and-render check against FLAMO (``adac.verify``): double within 1e-9 of FLAMO's
   peak (the code is the model), float32 within :data:`RANDOM_FLOAT32_TOL` (float32 rounding of the
   constants and the arithmetic: random cascades of 3-6 sections and FDNs with 1-2 sample lines measure up
   to 4.7e-6, where the pinned zoo of tests/test_equivalence.py stays within 1e-6).

Reproducible: hypothesis runs derandomized (a fixed seed derived from each test) and without an example
database, so every run and every CI run draws the same examples.
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import adac
from adac.backends.faust.render import faust_to_cpp
from adac.certificate.stability import SEVERITY
from adac.common.errors import AdacError, ToolchainError
from adac.ir import diagonal_kinds, iter_nodes, schema_kinds, validate_ir
from conftest import DOUBLE_TOL
from ir_strategies import ir_documents

pytestmark = pytest.mark.usefixtures("faust_available")

RANDOM_FLOAT32_TOL = 1e-5  # see the module docstring: float32 rounding on random models, measured <= 4.7e-6
IR_EXAMPLES = int(os.environ.get("ADAC_PROPERTY_IR_EXAMPLES", 500))  # >= 500 in the default run
BATCH_CHARS = 400_000  # FAUST source per batched compile
ALONE = 6  # programs also compiled on their own, unmodified

SETTINGS = dict(deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=list(HealthCheck))


# --- 1. random IR documents ---------------------------------------------------------------------

def _numbers(cpp: str) -> tuple[int, int]:
    n_in = re.search(r"getNumInputs\(\)\s*\{\s*return\s+(\d+);", cpp)
    n_out = re.search(r"getNumOutputs\(\)\s*\{\s*return\s+(\d+);", cpp)
    assert n_in and n_out, "no getNumInputs/getNumOutputs in the generated C++"
    return int(n_in.group(1)), int(n_out.group(1))


def _environment(code: str) -> str:
    """A generated ``.dsp`` as the body of a FAUST environment (declarations and the import stay outside)."""
    return "\n".join(line for line in code.splitlines() if not line.startswith(("declare ", "import(")))


def _batch_source(programs: list[dict]) -> str:
    parts = ['import("stdfaust.lib");']
    for i, p in enumerate(programs):
        parts.append(f"adac_prop{i} = environment {{\n{_environment(p['code'])}\n}};")
    checks = [f"(si.bus({p['in']}) : adac_prop{i}.process : si.bus({p['out']}))" for i, p in enumerate(programs)]
    parts.append("process = " + ", ".join(checks) + ";")
    return "\n".join(parts) + "\n"


def _batches(programs: list[dict]) -> list[list[dict]]:
    batches, current, size = [], [], 0
    for p in programs:
        if current and size + len(p["code"]) > BATCH_CHARS:
            batches.append(current)
            current, size = [], 0
        current.append(p)
        size += len(p["code"])
    return batches + ([current] if current else [])


def _compile_alone(program: dict) -> str | None:
    """None if the program compiles alone with its declared channel counts, else what went wrong."""
    try:
        cpp = faust_to_cpp(program["code"])
    except ToolchainError as exc:
        return f"FAUST refuses the emitted code: {exc}"
    got = _numbers(cpp)
    if got != (program["in"], program["out"]):
        return f"declared {program['in']}->{program['out']} channels, FAUST compiled {got[0]}->{got[1]}"
    return None


def _smallest(failures: list[tuple[dict, str]]) -> str:
    program, why = min(failures, key=lambda f: len(f[0]["ir"]))
    return (f"{len(failures)} emitted program(s) fail; the smallest IR:\n{program['ir']}\n{why}\n"
            f"--- emitted FAUST ---\n{program['code'][-3000:]}")


def _refused(document: dict, exc: AdacError) -> None:
    """A refusal is clean only for a valid document: the strategy draws nothing else (certify and
    json_to_faust validate the document themselves; it is checked again only when they refuse it)."""
    try:
        validate_ir(document)
    except AdacError as invalid:
        raise AssertionError(f"the strategy drew a document adac.ir.validate_ir refuses: {invalid}") from None


def test_random_irs_either_compile_with_their_channels_or_fail_cleanly():
    programs: list[dict] = []
    outcomes: Counter = Counter()
    forms: set = set()  # (kind, diagonal) of every node drawn

    @settings(max_examples=IR_EXAMPLES, **SETTINGS)
    @given(ir_documents())
    def check(document):
        text = json.dumps(document)
        forms.update((node["kind"], node.get("diagonal")) for node, _ in iter_nodes(document["graph"]))
        try:
            certificate = adac.certify(document)
            assert certificate["verdict"] in SEVERITY
            outcomes[certificate["verdict"]] += 1
        except AdacError as exc:
            _refused(document, exc)
            outcomes[f"certify refused: {type(exc).__name__}"] += 1
        try:
            code = adac.json_to_faust(document)
        except AdacError as exc:
            _refused(document, exc)
            outcomes[f"emission refused: {type(exc).__name__}"] += 1
            return
        finally:
            assert json.dumps(document) == text, "certify or json_to_faust changed its argument"
        assert isinstance(code, str) and "process = " in code
        programs.append({"ir": text, "code": code, "in": document["input_channels"], "out": document["output_channels"]})

    check()
    drawn = len(programs) + sum(v for k, v in outcomes.items() if k.startswith("emission refused"))
    print(f"\n{drawn} documents, {len(programs)} programs emitted; outcomes: {dict(sorted(outcomes.items()))}")
    assert drawn >= IR_EXAMPLES
    assert len(programs) >= IR_EXAMPLES // 2, f"most drawn documents should compile: {dict(outcomes)}"
    wanted = {(k, None) for k in set(schema_kinds()) - diagonal_kinds()} | \
        {(k, d) for k in diagonal_kinds() for d in (True, False)}
    assert wanted <= forms, f"the strategy no longer draws {sorted(wanted - forms, key=str)}"

    failures: list[tuple[dict, str]] = []
    for batch in _batches(programs):
        try:
            cpp = faust_to_cpp(_batch_source(batch))
        except ToolchainError:
            cpp = None
        if cpp is None or _numbers(cpp) != (sum(p["in"] for p in batch), sum(p["out"] for p in batch)):
            failures += [(p, why) for p in batch if (why := _compile_alone(p)) is not None]
            assert failures, "a batch failed although each of its programs compiles alone"
    for program in programs[:ALONE]:
        if (why := _compile_alone(program)) is not None:
            failures.append((program, why))
    assert not failures, _smallest(failures)


def test_the_batched_compile_catches_a_wrong_channel_count():
    """The batch check is not vacuous: a program that does not have its declared channel counts fails it."""
    ok = {"code": 'import("stdfaust.lib");\nprocess = _ <: _, _;\n', "in": 1, "out": 2, "ir": "{}"}
    wrong = dict(ok, out=3)
    assert _numbers(faust_to_cpp(_batch_source([ok, ok]))) == (2, 4)
    with pytest.raises(ToolchainError):
        faust_to_cpp(_batch_source([ok, wrong]))
    assert "declared 1->3" in _compile_alone(wrong)


# --- 2. random FLAMO models against FLAMO -------------------------------------------------------

MODEL_EXAMPLES = int(os.environ.get("ADAC_PROPERTY_MODEL_EXAMPLES", 12))


def _flamo():
    """The FLAMO side, imported on first use (torch is heavy)."""
    import torch
    from flamo.processor import dsp, system

    import flamo_models

    return torch, dsp, system, flamo_models


@st.composite
def _module(draw, n_in: int, n_out: int):
    """A random FLAMO module taking n_in channels and giving n_out (filters stable by construction)."""
    torch, dsp, _system, fm = _flamo()
    cpu, fs = fm.CPU, fm.FS
    square = n_in == n_out
    kinds = ["Gain", "Matrix", "Filter", "Biquad", "SOSFilter", "SVF", "Delay", "GainDelay"]
    if square:
        kinds += ["parallelGain", "Matrix-orthogonal", "HouseholderMatrix", "parallelFilter", "parallelBiquad",
                  "parallelSOSFilter", "parallelSVF", "parallelDelay", "parallelGainDelay"]
        if n_in in (2, 4):
            kinds += ["Matrix-hadamard", "Matrix-rotation"]
    kind = draw(st.sampled_from(kinds))
    n_sections = draw(st.integers(1, 3))
    size = (n_out, n_in)
    if kind == "Gain":
        return kind, dsp.Gain(size=size, **cpu)
    if kind == "parallelGain":
        return kind, fm.line_gains([draw(st.floats(-2, 2)) for _ in range(n_in)])
    if kind == "Matrix":
        return kind, dsp.Matrix(size=size, **cpu)
    if kind.startswith("Matrix-"):
        return kind, dsp.Matrix(size=size, matrix_type=kind.split("-")[1], **cpu)
    if kind == "HouseholderMatrix":
        return kind, dsp.HouseholderMatrix(size=size, **cpu)
    if kind == "Filter":
        return kind, dsp.Filter(size=(draw(st.integers(1, 24)), *size), **cpu)
    if kind == "parallelFilter":
        return kind, dsp.parallelFilter(size=(draw(st.integers(1, 24)), n_in), **cpu)
    if kind in ("Biquad", "parallelBiquad"):
        # FLAMO 0.2.20 cannot construct parallelBiquad(filter_type="bandpass") (IndexError in its init_param)
        ftype = draw(st.sampled_from(["lowpass", "highpass", "bandpass"] if kind == "Biquad" else ["lowpass", "highpass"]))
        if kind == "Biquad":
            return kind, dsp.Biquad(size=size, n_sections=n_sections, filter_type=ftype, fs=fs, **cpu)
        return kind, dsp.parallelBiquad(size=(n_in,), n_sections=n_sections, filter_type=ftype, fs=fs, **cpu)
    if kind == "SOSFilter":
        return kind, fm._sos(dsp.SOSFilter(size=size, n_sections=n_sections, fs=fs, **cpu))
    if kind == "parallelSOSFilter":
        return kind, fm._sos(dsp.parallelSOSFilter(size=(n_in,), n_sections=n_sections, fs=fs, **cpu))
    if kind in ("SVF", "parallelSVF"):
        ftype = draw(st.sampled_from(["lowpass", "highpass", "bandpass", "peaking"]))
        if kind == "SVF":
            return kind, dsp.SVF(size=size, n_sections=n_sections, filter_type=ftype, fs=fs, **cpu)
        return kind, dsp.parallelSVF(size=(n_in,), n_sections=n_sections, filter_type=ftype, fs=fs, **cpu)
    max_len = draw(st.integers(2, 300))
    if kind == "Delay":
        return kind, dsp.Delay(size=size, max_len=max_len, isint=True, fs=fs, **cpu)
    if kind == "parallelDelay":
        return kind, dsp.parallelDelay(size=(n_in,), max_len=max_len, isint=True, fs=fs, **cpu)
    if kind == "GainDelay":
        return kind, dsp.GainDelay(size=size, max_len=max_len, isint=True, fs=fs, **cpu)
    return kind, dsp.parallelGainDelay(size=(n_in,), max_len=max_len, isint=True, fs=fs, **cpu)


@st.composite
def _chain(draw, n_in: int, n_out: int, length: int):
    """A Series of ``length`` random modules from n_in to n_out channels."""
    _torch, _dsp, system, _fm = _flamo()
    widths = [n_in] + [draw(st.integers(1, 4)) for _ in range(length - 1)] + [n_out]
    built = [draw(_module(a, b)) for a, b in zip(widths, widths[1:])]
    return [k for k, _ in built], (built[0][1] if length == 1 else system.Series(*(m for _, m in built)))


@st.composite
def _loop(draw, n_lines: int):
    """An FDN loop: delay lines forward; a mixing matrix, per-line gains for a short T60 and maybe a
    filter back. Its response decays by more than 300 dB within the reference's FFT."""
    torch, dsp, system, fm = _flamo()
    delays = sorted(draw(st.lists(st.integers(1, 200), min_size=n_lines, max_size=n_lines, unique=True)))
    t60 = draw(st.floats(0.01, 0.08))
    lines = fm.delay_lines(delays)
    mix_kind = draw(st.sampled_from(["orthogonal", "householder"] + (["hadamard"] if n_lines in (2, 4) else [])))
    mix = dsp.HouseholderMatrix(size=(n_lines, n_lines), **fm.CPU) if mix_kind == "householder" else \
        dsp.Matrix(size=(n_lines, n_lines), matrix_type=mix_kind, **fm.CPU)
    feedback = [mix, fm.line_gains(fm.gains_for_t60(delays, t60))]
    kinds = [f"loop(delays {delays}, {mix_kind}, t60 {t60:.4f} s)"]
    if draw(st.booleans()):
        lowpass = dsp.parallelBiquad(size=(n_lines,), n_sections=1, filter_type="lowpass", fs=fm.FS, **fm.CPU)
        with torch.no_grad():
            lowpass.param[:, 0, :] = draw(st.floats(0.2, 0.8))
            lowpass.param[:, 1, :] = 1.0
        feedback.append(lowpass)
        kinds.append("lowpass in the loop")
    feedback = draw(st.permutations(feedback))
    forward = lines
    if draw(st.booleans()):  # the delays in the feedback path instead
        forward, feedback = fm.line_gains([1.0] * n_lines), [*feedback, lines]
        kinds.append("delays in the feedback path")
    return kinds, system.Recursion(forward, system.Series(*feedback))


@st.composite
def flamo_models(draw):
    """``(description, model, n_samples, nfft)``: a small random FLAMO model in a Shell."""
    torch, _dsp, system, _fm = _flamo()
    seed = draw(st.integers(0, 2 ** 31 - 1))
    torch.manual_seed(seed)
    n_in, n_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    shape = draw(st.sampled_from(["chain", "parallel", "loop", "loop"]))
    if shape == "chain":
        kinds, core = draw(_chain(n_in, n_out, draw(st.integers(1, 3))))
        n_samples, nfft = 2048, 1 << 15
    elif shape == "parallel":
        summed = n_out < 2 or draw(st.booleans())
        split = n_out if summed else draw(st.integers(1, n_out - 1))
        ka, a = draw(_chain(n_in, split, draw(st.integers(1, 2))))
        kb, b = draw(_chain(n_in, n_out if summed else n_out - split, draw(st.integers(1, 2))))
        kinds, core = [f"parallel(sum_output={summed})", ka, kb], system.Parallel(a, b, sum_output=summed)
        n_samples, nfft = 2048, 1 << 15
    else:
        n_lines = draw(st.integers(2, 4))
        ka, before = draw(_chain(n_in, n_lines, 1))
        kl, loop = draw(_loop(n_lines))
        kc, after = draw(_chain(n_lines, n_out, 1))
        kinds, core = [ka, kl, kc], system.Series(before, loop, after)
        n_samples, nfft = 4096, 1 << 16
    return f"seed {seed}, {n_in}->{n_out}: {kinds}", system.Shell(core), n_samples, nfft


@settings(max_examples=MODEL_EXAMPLES, **SETTINGS)
@given(flamo_models())
def test_random_flamo_models_render_like_flamo(case):
    description, model, n_samples, nfft = case
    fs = _flamo()[3].FS
    try:
        report = adac.verify(model, fs, n_samples, nfft=nfft)
    except AdacError as exc:
        pytest.fail(f"{description}: adac refuses a model built from supported classes: {exc}")
    assert report["float32"].peak > 0, f"{description}: a silent model proves nothing"
    assert report["float32"].max_relative_error <= RANDOM_FLOAT32_TOL, f"{description}: {report.summary()}"
    assert report["double"].max_relative_error <= DOUBLE_TOL, f"{description}: {report.summary()}"
