"""The shape of the code: stages as folders, imports pointing down the stages, one table of IR kinds.

* Every import inside ``adac`` (function-level ones included) goes from a stage to itself or to a
  stage below it, the module graph has no cycle, and only the FLAMO frontend imports torch or FLAMO.
* Every kind table (each stage's rules per IR kind) holds exactly the kinds the IR schema declares.
"""
import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import adac
from adac.ir.kinds import KindTable, diagonal_kinds, schema_kinds

PACKAGE = Path(adac.__file__).parent
# lowest first; a module may import its own stage or a lower one
STAGES = [
    ("adac.common",),
    ("adac.ir",),
    ("adac.analysis", "adac.frontend"),
    ("adac.backends.faust", "adac.backends.runtime"),
    ("adac.backends.native",),
    ("adac.backends.juce", "adac.certificate"),
    ("adac.equivalence", "adac.hotreload"),
    ("adac.build", "adac.report"),
    ("adac",),  # the package itself: the public API
]
FRONTEND = "adac.frontend.flamo"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every module ``path`` imports, function-level imports included, as absolute names."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module
            found.append((module, node.lineno))
            # `from . import x` / `from .pkg import sub`: the submodule, when it is one
            found += [(f"{module}.{alias.name}", node.lineno) for alias in node.names
                      if (PACKAGE.parent / f"{module}.{alias.name}".replace(".", "/")).with_suffix(".py").is_file()
                      or (PACKAGE.parent / f"{module}.{alias.name}".replace(".", "/") / "__init__.py").is_file()]
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        graph[name] = {m for m, _ in _imports(path) if m in modules}
    return graph


def _stage(module: str) -> int:
    best = None
    for rank, prefixes in enumerate(STAGES):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (rank, len(prefix))
    assert best is not None, f"{module} belongs to no stage of STAGES"
    return best[0]


def test_every_module_belongs_to_a_stage_folder():
    loose = [p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert not loose, f"modules outside a stage folder: {loose}"
    for path in PACKAGE.rglob("*.py"):
        _stage(_module_name(path))


def test_imports_point_down_the_stages():
    wrong = []
    for module, imported in _graph().items():
        for target in imported:
            if module == "adac.__main__":
                continue
            if _stage(target) > _stage(module):
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports that point up the stages:\n" + "\n".join(sorted(wrong))


def test_no_import_cycle():
    graph = _graph()
    # a package's __init__ is imported with each of its submodules; an __init__ that re-exports its own
    # submodules is not a cycle, so edges from a submodule to its own parent packages are left out
    edges = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_only_the_flamo_frontend_imports_torch_or_flamo():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        if module == FRONTEND or module.startswith(FRONTEND + "."):
            continue
        for imported, line in _imports(path):
            if imported.split(".")[0] in ("torch", "flamo", "torchaudio"):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {imported}")
    assert not offenders, "torch/FLAMO imported outside adac/frontend/flamo:\n" + "\n".join(offenders)


def test_the_graph_check_sees_function_level_imports(tmp_path):
    """The checks above read function-level imports too (a negative control on a file of their own)."""
    path = PACKAGE / "common" / "_probe_for_test.py"
    path.write_text("def f():\n    import torch\n    from ..build import cli\n")
    try:
        found = {m for m, _ in _imports(path)}
        assert {"torch", "adac.build", "adac.build.cli"} <= found
        assert _stage("adac.build.cli") > _stage(_module_name(path))
    finally:
        path.unlink()


def _import_all_stages():
    for info in pkgutil.walk_packages(adac.__path__, "adac."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)


def test_every_kind_table_matches_the_schema():
    _import_all_stages()
    kinds = set(schema_kinds())
    assert kinds == {"series", "parallel", "recursion", "delay", "gain", "householder", "fir", "sos", "gain_delay"}
    assert diagonal_kinds() == {"delay", "gain", "fir", "sos", "gain_delay"}
    stages = {t.stage for t in KindTable.tables}
    assert {"IR checks", "faust emission", "frequency response", "per-channel frequency response",
            "certificate bound", "time-domain simulation", "FLAMO rebuild", "loop compensation"} <= stages
    for table in KindTable.tables:
        missing, unknown = table.expected() - set(table.rules), set(table.rules) - table.expected()
        assert not missing and not unknown, f"{table.stage}: lacks {sorted(missing)}, knows unknown {sorted(unknown)}"


def test_a_table_missing_a_kind_is_caught():
    """Negative control: a table without a schema kind, or with an extra one, is what the test above rejects."""
    table = KindTable("probe")
    try:
        table.register(*sorted(set(schema_kinds()) - {"sos"}), "wavelet")(lambda node: None)
        assert table.expected() - set(table.rules) == {"sos"}
        assert set(table.rules) - table.expected() == {"wavelet"}
        with pytest.raises(adac.AdacError, match="no rule for IR node kind 'sos'"):
            table({"kind": "sos"})
    finally:
        KindTable.tables.remove(table)
