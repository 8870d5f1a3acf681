"""The report page, for real: `scons plugins/AdacFDN/report` in a build tree of its own, the page served
from loopback and opened in headless Chromium (Debian's, through Selenium, offline).

* the page loads with no console error, its audition panel compiles the .dsp's WebAssembly and plays a dry
  sound through the AudioWorklet;
* the audition DSP's impulse responses, rendered in the page by an OfflineAudioContext, match FLAMO's
  (float64) within 1e-6 x peak on every path;
* it also opens from disk (file://);
* the release package carries the page.

Regenerate the docs' screenshot from a built page with ``python3 -m adac.report.browser build/AdacFDN/report
--screenshot docs/img/report.png``.
"""
import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("selenium")

from adac.frontend.flamo.reference import flamo_reference  # noqa: E402
from adac.ir import load_ir  # noqa: E402
from adac.report.browser import chromium, serve, wait_ready  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = "AdacFDN"
pytestmark = pytest.mark.usefixtures("faust_available")


def _scons(root: Path, *args):
    cmd = ["scons", "-Q", f"BUILD_ROOT={root.relative_to(ROOT)}", "STEPS=ir,dsp,cert", *args]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout}\n{proc.stderr}"
    return re.findall(r"^adac (\w+)", proc.stdout, flags=re.M)


@pytest.fixture(scope="module")
def built():
    """The example's report, built by SCons (IR, .dsp, certificate, report; no C++ plugin) in its own tree."""
    root = ROOT / "build" / "tests" / f"report-{uuid.uuid4().hex[:10]}"
    try:
        assert _scons(root, f"plugins/{PLUGIN}/report") == ["ir", "dsp", "cert", "report"]
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        driver.set_script_timeout(300)
        yield driver


def _errors(driver) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]


def test_the_report_is_a_target_and_rebuilds_on_nothing(built):
    report = built / PLUGIN / "report"
    for name in ("index.html", "audition.js", "audition-data.js", "report.css", "img/certificate.png",
                 "img/impulse.png", "sounds/drums.wav"):
        assert (report / name).is_file(), name
    page = (report / "index.html").read_text()
    assert "certified-stable" in page and "rt60 slider" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "the page must not load from the network"
    data = json.loads((report / "report.json").read_text())
    assert data["relative_error"] <= 1e-6
    assert set(data["cost"]["step_seconds"]) >= {"build-ir", "emit", "certify", "wasm (this page)"}
    assert _scons(built, f"plugins/{PLUGIN}/report") == []


def test_the_page_loads_without_errors_and_plays(built, browser):
    with serve(built / PLUGIN / "report") as url:
        browser.get(url)
        wait_ready(browser)
        sliders = {e.get_attribute("id") for e in browser.find_elements("css selector", "#audition-controls input")}
        assert sliders == {"ctl-rt60", "ctl-dry_wet", "ctl-pre_delay"}
        browser.find_element("xpath", "//button[text()='play drum loop (synthesised)']").click()
        browser.find_element("css selector", "input[name=ab][value=dry]").click()
        WebDriverWait(browser, 30).until(
            lambda d: d.find_element("id", "audition-status").text == "playing drum loop (synthesised)")
        assert _errors(browser) == []


def test_the_browser_render_matches_flamo(built, browser):
    """OfflineAudioContext + AudioWorklet + the WebAssembly DSP, against FLAMO's float64 impulse response."""
    n = 24000
    with serve(built / PLUGIN / "report") as url:
        browser.get(url)
        wait_ready(browser)
        rendered = browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "adacRenderImpulse(arguments[0]).then(done, (e) => done(String(e)));", n)
        assert not isinstance(rendered, str), rendered
        assert _errors(browser) == []
    compiled = np.array(rendered, dtype=np.float64).transpose(2, 1, 0)  # [in][out][n] -> (n, out, in)
    reference, _ = flamo_reference(load_ir(built / PLUGIN / f"{PLUGIN}.json"), n, 1 << 19, alias_tolerance=1e-9)
    assert compiled.shape == reference.shape == (n, 2, 2)
    peak = np.abs(reference).max()
    error = np.abs(compiled - reference).max(axis=0) / peak
    assert error.max() <= 1e-6, error
    assert np.abs(compiled[n // 2:]).max() > 1e-3 * peak  # the tail is there: a reverb, not an empty render


def test_the_page_opens_from_disk(built, browser):
    browser.get((built / PLUGIN / "report" / "index.html").as_uri())
    wait_ready(browser)
    assert _errors(browser) == []


def test_the_release_package_carries_the_report(built):
    from adac.build.manifest import load_manifest
    from adac.build.release import package_release

    out = built / "release" / f"{PLUGIN}-test"
    folder = built / PLUGIN
    manifest_path = package_release(load_manifest(ROOT / "plugins" / PLUGIN / "plugin.yaml"), out,
                                    [folder / f"{PLUGIN}.json", folder / "report" / "index.html"])
    listed = {a["path"]: a for a in json.loads(manifest_path.read_text())["artefacts"]}
    assert {"report/index.html", "report/audition-data.js", "report/img/certificate.png"} <= set(listed)
    assert listed["report/index.html"]["kind"] == "report" and listed["report/index.html"]["plugin"] == PLUGIN
    assert (out / "report" / "index.html").read_bytes() == (folder / "report" / "index.html").read_bytes()
