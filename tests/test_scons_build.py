"""The SCons build, for real: what a change rebuilds, and nothing else.

Runs `scons` on a 4-line test plugin (tests/data/plugins/Tiny, copied to a temp folder) and
builds the IR, .dsp and certificate steps (and, without compiling C++, the JUCE project);
the plugin build itself is covered by the `juce`-marked tests. Each test uses its own build
folder inside the project, as the build requires.
"""
import ast
import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "plugins"
STEPS = "STEPS=ir,dsp,cert"

pytestmark = pytest.mark.usefixtures("faust_available")


class Build:
    def __init__(self, tmp_path):
        self.plugins = tmp_path / "plugins"
        shutil.copytree(DATA, self.plugins)
        self.root = ROOT / "build" / "tests" / f"scons-{uuid.uuid4().hex[:10]}"
        self.out = self.root / "Tiny"
        self.checkpoint = self.plugins / "Tiny" / "checkpoint.pt"

    def scons(self, *args, check=True, steps=STEPS):
        cmd = ["scons", "-Q", f"PLUGINS={self.plugins}", f"BUILD_ROOT={self.root.relative_to(ROOT)}",
               *([steps] if steps else []), *args]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def steps_run(self, *args, **kwargs):
        return re.findall(r"^adac (\w+)", self.scons(*args, **kwargs).stdout, flags=re.M)

    def mtimes(self):
        return {p.name: p.stat().st_mtime_ns for p in self.out.iterdir() if p.is_file()}

    def manifest(self, old, new):
        path = self.plugins / "Tiny" / "plugin.yaml"
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))


@pytest.fixture
def build(tmp_path):
    b = Build(tmp_path)
    yield b
    shutil.rmtree(b.root, ignore_errors=True)


def test_incremental_rebuilds(build):
    assert build.steps_run("plugins/Tiny") == ["ir", "dsp", "cert"]
    for name in ("Tiny.json", "Tiny.dsp", "Tiny.cert.json"):
        assert (build.out / name).is_file()
    built = build.mtimes()

    # no-op: nothing runs, `scons -n` and --debug=explain have nothing to do, and it is quick
    start = time.monotonic()
    assert build.steps_run("plugins/Tiny") == []
    noop_seconds = time.monotonic() - start
    assert build.mtimes() == built
    assert build.steps_run("-n", "plugins/Tiny") == []
    explain = build.scons("-n", "--debug=explain", "plugins/Tiny").stdout
    assert "because" not in explain and "is up to date" in explain, explain
    assert noop_seconds < 3, noop_seconds  # ~0.3 s here; generous for a loaded CI machine

    # the same checkpoint bytes saved again (new mtime): nothing rebuilds
    data = build.checkpoint.read_bytes()
    time.sleep(0.05)
    build.checkpoint.write_bytes(data)
    assert build.steps_run("plugins/Tiny") == []

    # a control in the manifest: the .dsp and the certificate rebuild, the IR does not
    build.manifest("fs: 48000", "fs: 48000\ncontrols:\n  dry_wet: {default: 0.5}")
    assert build.steps_run("plugins/Tiny") == ["dsp", "cert"]
    after = build.mtimes()
    assert after["Tiny.json"] == built["Tiny.json"] and after["Tiny.dsp"] != built["Tiny.dsp"]
    assert "dry_wet" in (build.out / "Tiny.dsp").read_text()

    # the fractional-delay order: the .dsp and the certificate (which bounds the delays as realised), not the IR
    build.manifest("fs: 48000", "fs: 48000\nfractional_order: 7")
    assert build.steps_run("plugins/Tiny") == ["dsp", "cert"]

    # strictness: the certificate alone
    build.manifest("fs: 48000", "fs: 48000\nstrict: false")
    assert build.steps_run("plugins/Tiny") == ["cert"]

    # new checkpoint values: IR, .dsp and certificate rebuild
    state = torch.load(build.checkpoint, weights_only=True)
    key = next(k for k in state if "output_gain" in k)
    state[key] = state[key] * 0.5
    torch.save(state, build.checkpoint)
    assert build.steps_run("plugins/Tiny") == ["ir", "dsp", "cert"]
    assert build.steps_run("plugins/Tiny") == []

    # the factory's source file is a dependency of the IR; an edit that changes no IR stops there
    factory = build.plugins / "Tiny" / "model.py"
    factory.write_text(factory.read_text() + "\n# a comment\n")
    assert build.steps_run("plugins/Tiny") == ["ir"]


def test_step_aliases_build_only_what_they_need(build):
    assert build.steps_run("plugins/Tiny/ir") == ["ir"]
    assert not (build.out / "Tiny.dsp").exists()
    assert build.steps_run("plugins/Tiny/dsp") == ["dsp"]
    assert build.steps_run("plugins/Tiny/cert") == ["cert"]


def test_a_failed_step_leaves_no_target(build):
    build.scons("plugins/Tiny/ir")
    build.checkpoint.write_bytes(b"corrupt")
    proc = build.scons("plugins/Tiny/ir", check=False)
    assert proc.returncode != 0
    assert "adac: error:" in proc.stderr and "cannot load checkpoint" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (build.out / "Tiny.json").exists()
    assert not list(build.out.glob(".*.tmp"))  # no temp file left behind either
    # and the next build tries again instead of thinking it is up to date
    assert build.steps_run("-n", "plugins/Tiny/ir") == ["ir"]


def test_a_refused_certificate_is_no_target(build):
    """Strict manifests stop at an unstable model; the certificate is kept aside for reading."""
    state = torch.load(build.checkpoint, weights_only=True)
    key = next(k for k in state if "attenuation" in k)
    state[key] = torch.full_like(state[key], 1.5)  # loop gain > 1
    torch.save(state, build.checkpoint)
    proc = build.scons("plugins/Tiny", check=False)
    assert proc.returncode != 0 and "stability certificate verdict '" in proc.stderr, proc.stderr
    assert "strict: false" in proc.stderr and "Tiny.cert.refused.json" in proc.stderr and "Traceback" not in proc.stderr
    assert not (build.out / "Tiny.cert.json").exists()
    verdict = json.loads((build.out / "Tiny.cert.refused.json").read_text())["verdict"]
    assert verdict not in ("certified-stable", "marginally-stable")
    build.manifest("fs: 48000", "fs: 48000\nstrict: false")
    assert build.steps_run("plugins/Tiny") == ["cert"]
    assert (build.out / "Tiny.cert.json").is_file() and not (build.out / "Tiny.cert.refused.json").exists()


def test_manifest_errors_stop_the_build_before_anything_runs(build):
    build.manifest("plugin_code: Tiny", "plugin_code: Ti ny")
    proc = build.scons("plugins/Tiny", check=False)
    assert proc.returncode == 2
    assert re.search(r"plugin\.yaml: line 5: /identity/plugin_code: 'Ti ny' does not match", proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not build.out.exists()


def test_manifest_output_outside_the_build_tree_is_refused(build):
    build.manifest("fs: 48000", "fs: 48000\noutput: ../../../outside")
    proc = build.scons("plugins/Tiny", check=False)
    assert proc.returncode == 2 and "/output: '../../../outside' is outside the build tree" in proc.stderr, proc.stderr
    assert not (ROOT / "outside").exists()


def test_manifest_output_folder(build):
    build.manifest("fs: 48000", "fs: 48000\noutput: reverbs/tiny")
    assert build.steps_run("plugins/Tiny/ir") == ["ir"]
    assert (build.root / "reverbs" / "tiny" / "Tiny.json").is_file()


def test_release_mode(build):
    assert build.steps_run("mode=release") == ["ir", "dsp", "cert", "package", "release"]
    release = build.root / "release"
    folder = release / "Tiny-1.0.0"
    for name in ("Tiny.json", "Tiny.dsp", "Tiny.cert.json"):
        assert (folder / name).read_bytes() == (build.out / name).read_bytes()
    summary = json.loads((release / "release-manifest.json").read_text())
    paths = {a["path"]: a for a in summary["artefacts"]}
    assert set(paths) == {f"Tiny-1.0.0/{n}" for n in ("Tiny.json", "Tiny.dsp", "Tiny.cert.json")}
    for path, entry in paths.items():
        assert entry["sha256"] == hashlib.sha256((release / path).read_bytes()).hexdigest()
    assert json.loads((folder / "release-manifest.json").read_text())["artefacts"][0]["path"] == "Tiny.cert.json"
    assert build.steps_run("RELEASE=1") == []  # the same mode, spelt the other way
    assert build.steps_run() == []  # a development build needs nothing more either
    # release: true in the manifest selects release mode for that plugin
    shutil.rmtree(release)
    build.manifest("fs: 48000", "fs: 48000\nrelease: true")
    assert build.steps_run() == ["package", "release"]


def test_juce_project_lists_every_file_it_writes(build):
    """The JUCE step's emitter declares exactly the files adac.backends.juce.export_juce writes (no C++ compiled)."""
    assert build.steps_run("plugins/Tiny/juce", steps=None) == ["ir", "dsp", "cert", "juce"]
    project = build.out / "juce"
    written = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}
    declared = json.loads((ROOT / "juce_template" / "project_files.json").read_text())["files"]
    assert written == set(declared)
    # a control change rewrites FaustDsp.cpp; the template files keep their mtime (Ninja rebuilds one file)
    before = {p.name: p.stat().st_mtime_ns for p in project.iterdir() if p.is_file()}
    build.manifest("fs: 48000", "fs: 48000\ncontrols:\n  pre_delay: true")
    assert build.steps_run("plugins/Tiny/juce", steps=None) == ["dsp", "cert", "juce"]
    after = {p.name: p.stat().st_mtime_ns for p in project.iterdir() if p.is_file()}
    assert after["FaustDsp.cpp"] != before["FaustDsp.cpp"]
    assert after["PluginProcessor.cpp"] == before["PluginProcessor.cpp"]


def test_build_root_outside_the_project_is_refused():
    proc = subprocess.run(["scons", "-Q", "BUILD_ROOT=/tmp/elsewhere", STEPS], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0 and "must be a folder inside" in proc.stdout + proc.stderr


def test_scons_help_lists_the_variables():
    proc = subprocess.run(["scons", "-Q", "-h"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0
    for variable in ("RELEASE", "mode", "PREFIX", "BUILD_ROOT", "PLUGINS", "STEPS", "ADAC_PYTHON"):
        assert variable in proc.stdout


@pytest.mark.juce
def test_plugin_install_and_a_control_change(tmp_path):
    """The whole chain for the test plugin, in the project's shared JUCE tree (build/juce-build: the
    JUCE modules compiled for the example are reused), then `scons install PREFIX=...`."""
    src = ROOT / "build" / "tests" / "scons-juce-src"  # a stable path: the JUCE tree registers the project
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(DATA, src)
    manifest = src / "Tiny" / "plugin.yaml"
    manifest.write_text(manifest.read_text() + "output: tests/scons-juce/Tiny\nformats: [VST3]\n")
    out = ROOT / "build" / "tests" / "scons-juce" / "Tiny"

    def scons(*args):
        proc = subprocess.run(["scons", "-Q", f"PLUGINS={src}", *args], cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return re.findall(r"^adac (\w+)", proc.stdout, flags=re.M)

    assert {"juce", "plugin"} <= set(scons("plugins/Tiny"))
    listing = json.loads((out / "Tiny.bundles.json").read_text())
    vst3 = Path(listing["bundles"]["VST3"]["path"])
    assert set(listing["bundles"]) == {"VST3"} and (vst3 / "Contents" / "x86_64-linux" / "Tiny.so").is_file()
    assert scons("plugins/Tiny") == []

    import numpy as np
    import pedalboard

    plugin = pedalboard.load_plugin(str(vst3))
    impulse = np.zeros((1, 4800), dtype=np.float32)
    impulse[0, 0] = 1.0
    assert np.abs(plugin(impulse, 48000)).max() > 0

    # a control: .dsp -> certificate -> project -> plugin, not the IR
    manifest.write_text(manifest.read_text() + "controls:\n  dry_wet: true\n")
    assert scons("plugins/Tiny") == ["dsp", "cert", "juce", "plugin"]
    # (a fresh process: this one keeps the old .so loaded)
    probe = subprocess.run([sys.executable, "-c", "import pedalboard, sys; "
                            "print(list(pedalboard.load_plugin(sys.argv[1]).parameters))", str(vst3)],
                           capture_output=True, text=True)
    assert "dry_wet" in probe.stdout, probe.stdout + probe.stderr

    assert scons("install", f"PREFIX={tmp_path}") == ["install"]
    assert (tmp_path / ".vst3" / "Tiny.vst3" / "Contents" / "x86_64-linux" / "Tiny.so").is_file()


# ---------------------------------------------------------------------- the factory's imports (Scanner)

def test_a_module_the_factory_imports_is_a_dependency_of_the_ir(build):
    """`from consts import X` beside model.py, and what consts imports in turn: editing either rebuilds the IR."""
    folder = build.plugins / "Tiny"
    model = folder / "model.py"
    text = model.read_text()
    assert "DELAYS = [97, 131, 163, 197]" in text and 'matrix_type="orthogonal"' in text
    model.write_text(text.replace("DELAYS = [97, 131, 163, 197]", "from consts import DELAYS, MATRIX")
                     .replace('matrix_type="orthogonal"', "matrix_type=MATRIX"))
    (folder / "consts.py").write_text("from tuning import MATRIX\n\nDELAYS = [97, 131, 163, 197]\n")
    (folder / "tuning.py").write_text('MATRIX = "orthogonal"\n')
    assert build.steps_run("plugins/Tiny") == ["ir", "dsp", "cert"]
    assert build.steps_run("plugins/Tiny") == []
    ir = (build.out / "Tiny.json").read_bytes()

    # the imported module: the IR runs again (here its content does not change: the checkpoint sets the delays)
    (folder / "consts.py").write_text("from tuning import MATRIX\n\nDELAYS = [97, 131, 163, 197]  # tuned\n")
    assert build.steps_run("plugins/Tiny") == ["ir"]
    # the module that module imports: a new feedback matrix, the IR and what follows rebuild
    (folder / "tuning.py").write_text('MATRIX = "hadamard"\n')
    assert build.steps_run("plugins/Tiny") == ["ir", "dsp", "cert"]
    assert (build.out / "Tiny.json").read_bytes() != ir
    assert build.steps_run("plugins/Tiny") == []
    explain = build.scons("-n", "--debug=explain", "plugins/Tiny").stdout
    assert "because" not in explain, explain


def test_factory_sources_follow_imports_inside_the_plugin_folder(tmp_path):
    """The scanner's import closure: packages, submodules, relative imports, function-level imports; not
    installed modules nor names that are no file of the folder."""
    from adac.build.scons.adac import factory_sources

    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "nspace").mkdir()
    files = {
        "model.py": "import numpy\nimport json\nfrom pkg import helper\n\ndef f(fs):\n    import late\n    from nspace.part import x\n",
        "pkg/__init__.py": "",
        "pkg/helper.py": "from .sub import deep\nfrom . import sibling\nfrom .. import nothing\n",
        "pkg/sibling.py": "",
        "pkg/sub/__init__.py": "",
        "pkg/sub/deep.py": "X = 1\n",
        "late.py": "",
        "nspace/part.py": "x = 1\n",
        "unused.py": "",
        "broken.py": "def (:\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    expected = sorted(str(tmp_path / n) for n in files if n not in ("unused.py", "broken.py"))
    assert factory_sources(str(tmp_path), "model.py:f") == expected
    # module:function: the module's package too
    assert factory_sources(str(tmp_path), "pkg.helper:f") == sorted(
        str(tmp_path / n) for n in ("pkg/__init__.py", "pkg/helper.py", "pkg/sibling.py", "pkg/sub/__init__.py",
                                    "pkg/sub/deep.py"))
    assert factory_sources(str(tmp_path), "json:loads") == []  # an installed module: not tracked
    (tmp_path / "model.py").write_text("import broken\n")  # a file that does not parse is still a dependency
    assert factory_sources(str(tmp_path), "model.py:f") == [str(tmp_path / "broken.py"), str(tmp_path / "model.py")]


# ------------------------------------------------------------------------------ paths are not shell code

def test_plugin_folders_with_shell_characters(tmp_path):
    """A plugin folder named b`touch pwned` or Bob's is a name: the steps build, and nothing is executed."""
    plugins = tmp_path / "plugins"
    for folder, name in (("b`touch pwned`", "Tiny"), ("Bob's", "Bobs"), ('x"$(touch pwned)"; touch pwned', "Quoted")):
        shutil.copytree(DATA / "Tiny", plugins / folder)
        manifest = plugins / folder / "plugin.yaml"
        manifest.write_text(manifest.read_text().replace("name: Tiny", f"name: {name}"))
    root = ROOT / "build" / "tests" / f"scons-{uuid.uuid4().hex[:10]}"
    cmd = ["scons", "-Q", f"PLUGINS={plugins}", f"BUILD_ROOT={root.relative_to(ROOT)}", STEPS]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        pwned = [p for p in (ROOT / "pwned", tmp_path / "pwned", Path.home() / "pwned") if p.exists()]
        pwned += list(tmp_path.rglob("pwned")) + (list(root.rglob("pwned")) if root.exists() else [])
        for path in pwned:
            path.unlink()
        assert not pwned, f"a folder name ran as a command: {pwned}"
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert sorted(re.findall(r"^adac (\w+)", proc.stdout, flags=re.M)) == sorted(["ir", "dsp", "cert"] * 3)
        for name in ("Tiny", "Bobs", "Quoted"):
            for suffix in (".json", ".dsp", ".cert.json"):
                assert (root / name / f"{name}{suffix}").is_file()
        again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        assert again.returncode == 0 and not re.findall(r"^adac (\w+)", again.stdout, flags=re.M), again.stdout
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ------------------------------------------------------------------------ programs, messages, the tool

def _script(path, text):
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(0o755)
    return path


def test_the_faust_version_is_in_the_signature_of_the_juce_step(build, tmp_path):
    assert build.steps_run("plugins/Tiny/juce", steps=None) == ["ir", "dsp", "cert", "juce"]
    assert build.steps_run("plugins/Tiny/juce", steps=None) == []
    faust = _script(tmp_path / "faust", 'if [ "$1" = --version ]; then echo "FAUST Version 99.0.0"; exit 0; fi\n'
                                         f'exec {shutil.which("faust")} "$@"\n')
    assert build.steps_run("plugins/Tiny/juce", f"ADAC_FAUST={faust}", steps=None) == ["juce"]
    assert build.steps_run("plugins/Tiny/juce", f"ADAC_FAUST={faust}", steps=None) == []


def test_program_variables_reach_the_steps(build, tmp_path):
    """ADAC_FAUST, ADAC_CXX, ADAC_CMAKE, ADAC_NINJA, ADAC_STRIP are passed to the steps (as the environment
    variables adac reads)."""
    record = tmp_path / "env.txt"
    python = _script(tmp_path / "python", f'env > "{record}"\nexec {shutil.which("python3")} "$@"\n')
    tools = tmp_path / "tools"
    tools.mkdir()
    ninja, strip = _script(tools / "ninja", "exit 0\n"), _script(tools / "strip", "exit 0\n")
    settings = {"ADAC_FAUST": shutil.which("faust"), "ADAC_CXX": "/opt/cxx/bin/c++", "ADAC_CMAKE": "/opt/cmake/bin/cmake",
                "ADAC_NINJA": str(ninja), "ADAC_STRIP": str(strip)}
    assert build.steps_run("plugins/Tiny/ir", f"ADAC_PYTHON={python}",
                           *(f"{k}={v}" for k, v in settings.items())) == ["ir"]
    seen = dict(line.split("=", 1) for line in record.read_text().splitlines() if "=" in line)
    assert seen["ADAC_FAUST"] == settings["ADAC_FAUST"] and seen["CXX"] == "/opt/cxx/bin/c++"
    assert seen["ADAC_CMAKE"] == "/opt/cmake/bin/cmake" and seen["ADAC_NINJA"] == str(ninja)
    assert seen["ADAC_STRIP"] == str(strip)


def test_every_action_has_its_short_message(build):
    out = build.scons("-n", "hotreload", "install", "mode=release", steps=None).stdout
    assert re.search(r"^adac hotreload \S*adac-hotreload-render$", out, flags=re.M), out
    for line in out.splitlines():
        assert line.startswith(("adac ", "scons: ")), line  # no command line printed raw


def test_a_project_uses_the_installed_tool(tmp_path):
    """Another project: `toolpath=[adac.build.scons_toolpath()]`, then the adac package is still importable."""
    import adac.build

    folder = Path(adac.build.scons_toolpath())
    assert (folder / "adac.py").is_file()
    tool_imports = {n.names[0].name.split(".")[0] if isinstance(n, ast.Import) else (n.module or "").split(".")[0]
                    for n in ast.walk(ast.parse((folder / "adac.py").read_text()))
                    if isinstance(n, (ast.Import, ast.ImportFrom))}
    assert tool_imports <= set(sys.stdlib_module_names) | {"SCons"}, tool_imports
    shutil.copytree(DATA / "Tiny", tmp_path / "Tiny")
    (tmp_path / "SConstruct").write_text(
        "import os\nimport adac.build\n"
        "env = Environment(ENV=os.environ, tools=['default', 'adac'], toolpath=[adac.build.scons_toolpath()])\n"
        "import adac.build.manifest\n"  # the package, not the tool SCons registered as 'adac'
        "plan = env.AdacPlan(['Tiny/plugin.yaml'])\n"
        "env.AdacPluginTargets('Tiny/plugin.yaml', plan['manifests']['Tiny/plugin.yaml'], steps=('ir',))\n")
    proc = subprocess.run(["scons", "-Q"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "build" / "Tiny" / "Tiny.json").is_file()


def test_cache_dir_serves_another_build_tree(build, tmp_path):
    """`scons CACHE=dir`: a fresh build tree (another clone, or after `rm -r build`) fetches the IR, .dsp and
    certificate from the cache instead of running the steps."""
    cache = tmp_path / "cache"
    assert build.steps_run(f"CACHE={cache}") == ["ir", "dsp", "cert"]
    built = {n: (build.out / n).read_bytes() for n in ("Tiny.json", "Tiny.dsp", "Tiny.cert.json")}
    shutil.rmtree(build.root)
    proc = build.scons(f"CACHE={cache}")
    assert not re.findall(r"^adac (\w+)", proc.stdout, flags=re.M), proc.stdout
    assert proc.stdout.count("from cache") == 3, proc.stdout
    assert {n: (build.out / n).read_bytes() for n in built} == built
