import json
import os
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
import yaml

warnings.filterwarnings("ignore", module="flamo")

# FLOAT32 / DOUBLE tolerances of the core issue: max abs error relative to the peak of FLAMO's response.
FLOAT32_TOL = 1e-6
DOUBLE_TOL = 1e-9


def pytest_configure(config):
    os.environ.setdefault("ADAC_CACHE", str(config.rootpath / "build" / "cache"))


@pytest.fixture(scope="session")
def faust_available():
    if shutil.which(os.environ.get("ADAC_FAUST", "faust")) is None:
        pytest.fail("the FAUST compiler is not installed: run scripts/setup.sh (equivalence tests must not be skipped)")
    return True


def build_example() -> dict:
    """The shipped example built by the README's command path (`scons plugins/AdacFDN`): its listing
    build/AdacFDN/AdacFDN.bundles.json, {"bundles": {"VST3"|"LV2"|"Standalone": {"path": str, "sha256": str}}, ...}."""
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(["scons", "-Q", "plugins/AdacFDN"], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads((root / "build" / "AdacFDN" / "AdacFDN.bundles.json").read_text())


@pytest.fixture(scope="session")
def example_bundles(faust_available):
    """:func:`build_example`, once per session."""
    return build_example()


def build_example_variant(work: Path, name: str, ir: Path, *, plugin_code: str, display_name: str, **changes) -> dict:
    """The shipped example's model under another name, VST3 only, with the manifest fields ``changes`` (``backend``:
    unless given, the realisation the example's build chose, so that the two plugins compute alike), through the
    build steps into ``work/<name>``, in the shared JUCE tree; ``ir``: the example's IR (the same model). Returns the
    bundle listing."""
    from adac.build import steps
    from adac.build.manifest import load_manifest

    root = Path(__file__).resolve().parent.parent
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    for file in ("model.py", "checkpoint.pt"):
        shutil.copy2(root / "plugins" / "AdacFDN" / file, folder / file)
    document = yaml.safe_load((root / "plugins" / "AdacFDN" / "plugin.yaml").read_text())
    chosen = json.loads((root / "build" / "AdacFDN" / "juce" / "adac_project.json").read_text())["backend"]
    document.update(name=name, display_name=display_name, formats=["VST3"], **{"backend": chosen, **changes})
    document["identity"]["plugin_code"] = plugin_code
    (folder / "plugin.yaml").write_text(yaml.safe_dump(document))
    manifest = load_manifest(folder / "plugin.yaml")
    out = folder / "out"
    out.mkdir(exist_ok=True)
    ir = shutil.copy2(ir, out / f"{name}.json")
    code = steps.dsp_step(manifest, ir, out / f"{name}.dsp")
    project = steps.juce_step(manifest, code, out / "juce", ir_path=ir)
    listing = steps.plugin_step(manifest, project, out / f"{name}.bundles.json", juce_build=root / "build" / "juce-build")
    return json.loads(Path(listing).read_text())
