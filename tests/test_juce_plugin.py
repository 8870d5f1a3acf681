"""adac.backends.juce: JUCE projects from plain FAUST code, built and loaded in a real host.

Fast tests check ``export_juce`` (identity validation, sanitisation, incremental writes) and
``install_bundles``. The ``juce`` tests build one real plugin (session fixture, in
``build/tests/juce``: a rerun is incremental), load its VST3 in pedalboard and compare its
impulse responses with adac.backends.faust.render's native render of the same FAUST code.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from adac.common.errors import AdacError, ToolchainError
from adac.backends.juce import build_plugin, export_juce, install_bundles
from adac.backends.juce.project import _update_superproject

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "tests" / "juce"
FS = 48000

# 2 in / 2 out: a 2-line feedback delay network (Hadamard feedback) with a dry/wet mix.
TEST_DSP = """\
declare name "adac_test";
declare tail_seconds "2";
import("stdfaust.lib");
wet = hslider("wet", 0.35, 0, 1, 0.01);
fb = nentry("feedback", 0.5, 0, 0.9, 0.05);
gain = ba.db2linear(hgroup("out", vslider("gain [unit:dB]", 0, -24, 12, 0.1)));
freeze = checkbox("freeze");
g = select2(freeze, fb, 1.0) * 0.7071;
hadamard = _, _ <: +, -;
fdn = (ro.interleave(2, 2) : +, + : @(149), @(211)) ~ (hadamard : *(g), *(g));
process = _, _ <: (*(1 - wet), *(1 - wet)), (fdn : *(wet), *(wet)) :> *(gain), *(gain);
"""
# What the FAUST UI above declares (written out by hand: the test does not trust adac's parser).
EXPECTED_PARAMS = {
    # pedalboard name: (FAUST label, address, min, max, default, step, unit)
    "wet": ("wet", "/adac_test/wet", 0.0, 1.0, 0.35, 0.01, ""),
    "feedback": ("feedback", "/adac_test/feedback", 0.0, 0.9, 0.5, 0.05, ""),
    "gain_db": ("gain", "/adac_test/out/gain", -24.0, 12.0, 0.0, 0.1, "dB"),
}
IDENTITY = dict(name="AdacJuceTest", manufacturer="adac tests", manufacturer_code="Adts", plugin_code="Ajt1",
                version="1.2.3")
SIMPLE_DSP = 'process = _ * hslider("level", 0.5, 0, 1, 0.01);\n'


def _export(tmp_path, code=SIMPLE_DSP, **overrides):
    return export_juce(code, tmp_path / "proj", **{**IDENTITY, **overrides})


# ------------------------------------------------------------------------------------- fast: export

@pytest.mark.parametrize("field, value", [
    ("manufacturer_code", "adts"),      # first character must be upper case
    ("manufacturer_code", "Adt"),       # 4 characters
    ("manufacturer_code", "Adtsx"),
    ("manufacturer_code", "Ad-s"),      # alphanumerics only
    ("manufacturer_code", "Adté"),      # ASCII only
    ("plugin_code", "Aj1"),
    ("plugin_code", "Aj 1"),
    ("plugin_code", 1234),
    ("version", "1.0"),
    ("version", "1.0.0.0"),
    ("version", "v1.0.0"),
    ("version", "1.256.0"),
    ("name", ""),
    ("name", "!!! ///"),
    ("manufacturer", "  "),
    ("formats", ("VST2",)),
    ("formats", ()),
    ("bundle_id", "not a bundle id"),
    ("bundle_id", 'com.example."x"'),
    ("lv2_uri", "https://example.com/a b"),
    ("lv2_uri", 'https://example.com/"x";'),
    ("lv2_uri", "no-scheme"),
])
def test_invalid_identity_is_refused_naming_the_field(tmp_path, faust_available, field, value):
    with pytest.raises(AdacError, match=field):
        _export(tmp_path, **{field: value})
    assert not (tmp_path / "proj").exists(), "nothing may be written for an invalid identity"


def test_au_plugin_code_needs_exactly_one_upper_case_letter(tmp_path, faust_available):
    with pytest.raises(AdacError, match="plugin_code"):
        _export(tmp_path, plugin_code="AJT1", formats=("VST3", "AU"))
    _export(tmp_path, plugin_code="Ajt1", formats=("VST3", "AU"))


def test_faust_error_raises_and_writes_nothing(tmp_path, faust_available):
    with pytest.raises(ToolchainError, match="faust"):
        _export(tmp_path, code="process = undefined_thing;\n")
    assert not (tmp_path / "proj").exists()


def test_conflicting_faust_flags_are_refused(tmp_path, faust_available):
    with pytest.raises(AdacError, match="faust_flags"):
        _export(tmp_path, faust_flags=("-a", "other.cpp"))


def _compilation_options(project: Path) -> str:
    return re.search(r"Compilation options: (.*)", (project / "FaustDsp.cpp").read_text()).group(1)


def test_plugins_compile_with_ring_buffer_delays_and_manifest_options_win(tmp_path, faust_available):
    """-mcd 0 by default (the fastest scalar option in bench/); a manifest's "-mcd 16" or "-ftz 2" (option and
    value in one item, as YAML lists them) reaches faust as two words and overrides the default."""
    assert "-mcd 0" in _compilation_options(_export(tmp_path / "default"))
    options = _compilation_options(_export(tmp_path / "manifest", faust_flags=("-mcd 16", "-ftz 2")))
    assert "-mcd 16" in options and "-ftz 2" in options and "-mcd 0" not in options


def test_generated_project_carries_the_identity(tmp_path, faust_available):
    project = _export(tmp_path, formats=("VST3", "LV2", "Standalone", "AU"), bundle_id="org.example.test",
                      lv2_uri="https://example.org/plugins/test")
    cmake = (project / "CMakeLists.txt").read_text()
    assert re.search(r"^project\(AdacJuceTest VERSION 1\.2\.3 ", cmake, re.M)
    assert "juce_add_plugin(AdacJuceTest\n" in cmake
    for line in ('PRODUCT_NAME "AdacJuceTest"', 'PLUGIN_NAME "AdacJuceTest"', 'COMPANY_NAME "adac tests"',
                 'BUNDLE_ID "org.example.test"', "PLUGIN_MANUFACTURER_CODE Adts", "PLUGIN_CODE Ajt1",
                 "VERSION 1.2.3", 'LV2URI "https://example.org/plugins/test"',
                 "set(ADAC_FORMATS VST3 LV2 Standalone)", "set(ADAC_APPLE_FORMATS AU)",
                 'JucePlugin_LV2URI="https://example.org/plugins/test"'):
        assert line in cmake, line
    assert re.search(r"if\(APPLE\)\s*\n\s*list\(APPEND ADAC_FORMATS \$\{ADAC_APPLE_FORMATS\}\)", cmake)
    assert "@" not in cmake.replace("@TARGET@", "")  # no template placeholder left
    # the DSP class is in its own translation unit, with the factory the processor uses
    dsp = (project / "FaustDsp.cpp").read_text()
    assert "class AdacFaustDsp" in dsp and "adacCreateFaustDsp()" in dsp
    assert "class AdacFaustDsp" not in (project / "PluginProcessor.cpp").read_text()
    for header in ("faust/dsp/dsp.h", "faust/gui/UI.h", "faust/gui/meta.h", "faust/gui/PathBuilder.h", "faust/export.h"):
        assert (project / "faust_include" / header).is_file(), header


HOSTILE_NAME = 'My"Reverb; rm -rf /'


def test_hostile_strings_are_sanitised(tmp_path, faust_available):
    project = _export(tmp_path, name=HOSTILE_NAME, manufacturer='Evil "Corp"; $(reboot) `id` \\ @TARGET@',
                      display_name='Nice" Name\n${x}')
    cmake = (project / "CMakeLists.txt").read_text()
    target = re.search(r"^project\((\w+) ", cmake, re.M).group(1)
    assert target == "My_Reverb_rm_rf"
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", target)
    values = dict(re.findall(r'^\s+(PRODUCT_NAME|PLUGIN_NAME|DESCRIPTION|COMPANY_NAME|BUNDLE_ID|LV2URI) "(.*)"$', cmake, re.M))
    assert set(values) == {"PRODUCT_NAME", "PLUGIN_NAME", "DESCRIPTION", "COMPANY_NAME", "BUNDLE_ID", "LV2URI"}
    for key, value in values.items():
        assert not re.search(r'["\\;$`@\n]', value), (key, value)
        assert "rm -rf /" not in value and "$(reboot)" not in value
    assert values["PLUGIN_NAME"] == "Nice_ Name___x_"
    assert values["COMPANY_NAME"] == "Evil _Corp__ _(reboot) _id_ _ _TARGET_"
    for line in cmake.splitlines():  # every quote in the file opens or closes a string of one line
        assert line.count('"') % 2 == 0, line
    # the identity header is valid C++ (every string literal closed)
    compiler = shutil.which(os.environ.get("CXX", "g++"))
    proc = subprocess.run([compiler, "-fsyntax-only", "-x", "c++", str(project / "PluginConfig.h")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    info = (project / "adac_project.json").read_text()
    assert f'"target": "{target}"' in info


def test_non_ascii_names_are_transliterated(tmp_path, faust_available):
    project = _export(tmp_path, name="Réverb Élégante", manufacturer="Müller & Söhne")
    cmake = (project / "CMakeLists.txt").read_text()
    assert "project(Reverb_Elegante " in cmake
    assert 'PLUGIN_NAME "Reverb Elegante"' in cmake
    assert 'COMPANY_NAME "Muller _ Sohne"' in cmake


def test_unchanged_files_are_not_rewritten(tmp_path, faust_available):
    project = _export(tmp_path)
    files = sorted(p for p in project.rglob("*") if p.is_file())
    assert len(files) >= 10
    past = 1_000_000_000  # 2001: any rewrite would move the mtime to now
    for path in files:
        os.utime(path, ns=(past * 10**9, past * 10**9))
    _export(tmp_path)
    assert [p for p in files if p.stat().st_mtime_ns != past * 10**9] == []
    # a new model changes the DSP translation unit only
    _export(tmp_path, code=SIMPLE_DSP.replace("0.5", "0.25"))
    changed = [p.relative_to(project).as_posix() for p in files if p.stat().st_mtime_ns != past * 10**9]
    assert changed == ["FaustDsp.cpp"]
    assert not list(project.rglob("*.tmp")), "no temp file may be left behind"


# ------------------------------------------------------------------------------------ fast: install

def _fake_bundles(root: Path) -> dict:
    vst3 = root / "Fake.vst3" / "Contents" / "x86_64-linux"
    vst3.mkdir(parents=True)
    (vst3 / "Fake.so").write_bytes(b"vst3")
    lv2 = root / "Fake.lv2"
    lv2.mkdir()
    (lv2 / "manifest.ttl").write_text("# ttl\n")
    return {"VST3": root / "Fake.vst3", "LV2": lv2}


def test_install_copies_bundles_under_the_prefix(tmp_path):
    built = _fake_bundles(tmp_path / "built")
    prefix = tmp_path / "home"
    installed = install_bundles(built, prefix=prefix)
    assert installed == {"VST3": prefix / ".vst3" / "Fake.vst3", "LV2": prefix / ".lv2" / "Fake.lv2"}
    assert (prefix / ".vst3" / "Fake.vst3" / "Contents" / "x86_64-linux" / "Fake.so").read_bytes() == b"vst3"
    assert (prefix / ".lv2" / "Fake.lv2" / "manifest.ttl").is_file()
    # reinstalling replaces the old copy, and the listing form of copy_bundles is accepted too
    (built["LV2"] / "manifest.ttl").write_text("# new\n")
    install_bundles({"LV2": {"path": str(built["LV2"])}}, prefix=prefix)
    assert (prefix / ".lv2" / "Fake.lv2" / "manifest.ttl").read_text() == "# new\n"
    assert sorted(p.name for p in (prefix / ".lv2").iterdir()) == ["Fake.lv2"]


def test_install_refuses_paths_outside_the_target(tmp_path):
    built = _fake_bundles(tmp_path / "built")
    prefix = tmp_path / "home"
    with pytest.raises(AdacError, match="VST3"):  # not a .vst3 bundle
        install_bundles({"VST3": built["LV2"]}, prefix=prefix)
    with pytest.raises(AdacError):
        install_bundles({"VST3": tmp_path / "built" / ".."}, prefix=prefix)
    (prefix / ".vst3").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", prefix / ".vst3" / "Fake.vst3")
    with pytest.raises(AdacError, match="symbolic link"):
        install_bundles({"VST3": built["VST3"]}, prefix=prefix)
    assert list((tmp_path / "elsewhere").iterdir()) == []
    assert not (prefix / ".lv2").exists(), "a refused install writes nothing"


def test_build_tree_refuses_two_projects_with_one_name(tmp_path, faust_available):
    first = export_juce(SIMPLE_DSP, tmp_path / "a", **IDENTITY)
    second = export_juce(SIMPLE_DSP, tmp_path / "b", **IDENTITY)
    tree = tmp_path / "tree"
    assert _update_superproject(tree, "AdacJuceTest", first) is True
    assert _update_superproject(tree, "AdacJuceTest", first) is False  # registered: no re-configure
    with pytest.raises(AdacError, match="AdacJuceTest"):
        _update_superproject(tree, "AdacJuceTest", second)
    listing = (tree / "adac-superproject" / "plugins.cmake").read_text()
    assert listing.count("add_subdirectory(") == 1 and str(first) in listing


def test_build_plugin_needs_an_exported_project(tmp_path):
    with pytest.raises(AdacError, match="CMakeLists.txt"):
        build_plugin(tmp_path / "nothing", tmp_path / "tree")


# ---------------------------------------------------------------------------- slow: a real plugin

@pytest.fixture(scope="session")
def built_plugin(faust_available):
    project = export_juce(TEST_DSP, BUILD / "AdacJuceTest", **IDENTITY)
    # the project joins the build tree the example plugin uses (SCons: build/juce-build): JUCE compiles once
    bundles = build_plugin(project, ROOT / "build" / "juce-build", jobs=2)
    return project, bundles


def _load(bundles):
    import pedalboard

    return pedalboard.load_plugin(str(bundles["VST3"]))


@pytest.mark.juce
def test_all_linux_formats_are_built(built_plugin):
    _, bundles = built_plugin
    assert set(bundles) == {"VST3", "LV2", "Standalone"}
    assert (bundles["VST3"] / "Contents" / "x86_64-linux" / "AdacJuceTest.so").is_file()
    # pedalboard 0.9 cannot load LV2 on Linux: the bundle is checked on disk instead
    lv2 = bundles["LV2"]
    manifest = (lv2 / "manifest.ttl").read_text()
    assert "<https://adac-tests.com/plugins/adacjucetest>\n\ta lv2:Plugin" in manifest
    assert "lv2:binary <libAdacJuceTest.so>" in manifest
    assert (lv2 / "libAdacJuceTest.so").is_file()
    dsp_ttl = (lv2 / "dsp.ttl").read_text()
    for label in ("wet", "feedback", "gain", "freeze"):
        assert f'"{label}"' in dsp_ttl, label
    standalone = bundles["Standalone"]
    assert standalone.is_file() and os.access(standalone, os.X_OK)
    ldd = subprocess.run(["ldd", str(standalone)], capture_output=True, text=True)
    assert ldd.returncode == 0 and "not found" not in ldd.stdout, ldd.stdout


@pytest.mark.juce
def test_faust_controls_are_host_parameters(built_plugin):
    plugin = _load(built_plugin[1])
    assert plugin.name == "AdacJuceTest" and plugin.manufacturer_name == "adac tests" and plugin.version == "1.2.3"
    names = set(plugin.parameters) - {"bypass"}  # JUCE's VST3 wrapper adds a bypass parameter
    assert names == set(EXPECTED_PARAMS) | {"freeze"}
    for key, (label, _, low, high, default, step, unit) in EXPECTED_PARAMS.items():
        param = plugin.parameters[key]
        assert param.name == label, key
        assert param.min_value == pytest.approx(low, abs=1e-6), key
        assert param.max_value == pytest.approx(high, abs=1e-6), key
        assert param.default_raw_value == pytest.approx((default - low) / (high - low), abs=1e-6), key
        assert getattr(plugin, key) == pytest.approx(default, abs=1e-6), key
        assert param.step_size == pytest.approx(step, rel=1e-4), key
        assert (param.label or "") == unit, key
    freeze = plugin.parameters["freeze"]
    assert freeze.type is bool and bool(plugin.freeze) is False  # pedalboard wraps the bool


def _juce_state_xml(raw_state: bytes) -> str:
    """The processor's own XML inside a JUCE VST3 state (MemoryBlock base64 of JUCE)."""
    match = re.search(rb"<IComponent>(\d+)\.([^<]*)</IComponent>", raw_state)
    assert match, raw_state[:200]
    alphabet = ".ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+"
    bits = 0
    for i, ch in enumerate(match.group(2).decode()):
        bits |= alphabet.index(ch) << (6 * i)
    data = bits.to_bytes((6 * len(match.group(2)) + 7) // 8, "little")[:int(match.group(1))]
    xml = re.search(rb"<ADAC_STATE.*?</ADAC_STATE>", data)
    assert xml, data[:200]
    return xml.group(0).decode()


@pytest.mark.juce
def test_parameter_ids_are_faust_addresses_and_state_round_trips(built_plugin):
    plugin = _load(built_plugin[1])
    plugin.wet = 0.5
    plugin.gain_db = -6.0
    xml = _juce_state_xml(plugin.raw_state)
    ids = re.findall(r'id="([^"]+)"', xml)
    assert sorted(ids) == sorted([addr for _, addr, *_ in EXPECTED_PARAMS.values()] + ["/adac_test/freeze"])
    assert '<PARAM id="/adac_test/wet" value="0.5"/>' in xml
    assert '<PARAM id="/adac_test/out/gain" value="-6.0"/>' in xml
    other = _load(built_plugin[1])
    assert other.wet == pytest.approx(0.35, abs=1e-6)
    other.raw_state = plugin.raw_state
    assert other.wet == pytest.approx(0.5, abs=1e-6) and other.gain_db == pytest.approx(-6.0, abs=1e-6)


@pytest.mark.juce
def test_impulse_responses_match_the_native_render(built_plugin):
    from adac.backends.faust.render import render_impulse_responses

    plugin = _load(built_plugin[1])
    settings = {"wet": 0.5, "feedback": 0.7, "gain_db": -6.0}
    for key, value in settings.items():
        setattr(plugin, key, value)
        assert getattr(plugin, key) == pytest.approx(value, abs=1e-6), key
    n = FS // 2
    params = {EXPECTED_PARAMS[key][1]: float(getattr(plugin, key)) for key in settings}
    native = render_impulse_responses(TEST_DSP, FS, n, params=params)  # (n, n_out, n_in)
    default = render_impulse_responses(TEST_DSP, FS, n)
    assert native.shape == (n, 2, 2)
    peak = np.abs(native).max()
    # the settings matter: a plugin ignoring its parameters would fail the comparison below
    assert np.abs(native - default).max() > 1e-2 * peak
    for channel in range(2):
        impulse = np.zeros((2, n), dtype=np.float32)
        impulse[channel, 0] = 1.0
        rendered = plugin.process(impulse, FS, buffer_size=512, reset=True)
        assert rendered.shape == (2, n)
        expected = native[:, :, channel].T
        error = np.abs(rendered - expected).max()
        assert error <= 1e-6 * peak, (channel, error / peak)
        assert np.abs(rendered[:, 2000:]).max() > 1e-4 * peak, "the feedback tail is missing"
        assert np.abs(rendered[1 - channel]).max() > 1e-3 * peak, "the FDN couples both channels"


@pytest.mark.juce
def test_a_dsp_change_recompiles_only_the_dsp_translation_unit(built_plugin):
    project, bundles = built_plugin
    tree = ROOT / "build" / "juce-build"
    # (ninja -n cannot tell: JUCE's CONFIGURE_DEPENDS globs make every dry run plan a CMake re-run)
    try:
        export_juce(TEST_DSP.replace("@(149)", "@(151)"), project, **IDENTITY)
        proc = subprocess.run(["ninja", "-C", str(tree), "-j2", "AdacJuceTest_All"], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        compiled = re.findall(r"Building CXX object (\S+)", proc.stdout)
        assert compiled == ["plugins/AdacJuceTest/CMakeFiles/AdacJuceTest.dir/FaustDsp.cpp.o"], proc.stdout
        assert "Re-running CMake" not in proc.stdout
        assert len(re.findall(r"Linking CXX (?:shared module|executable)", proc.stdout)) == 3, proc.stdout
    finally:
        export_juce(TEST_DSP, project, **IDENTITY)
        assert build_plugin(project, tree) == bundles


def test_the_build_shows_condensed_progress(tmp_path):
    """A long build prints one progress line per tenth of its [n/m] steps to a log (not minutes of silence,
    nor every compiler line), and a failure carries the tool's last lines."""
    import io

    from adac.common.errors import ToolchainError
    from adac.common.toolchain import run_with_progress

    tool = tmp_path / "tool"
    tool.write_text("#!/bin/sh\nfor i in $(seq 1 200); do echo \"[$i/200] Building CXX object juce_$i.cpp.o\"; "
                    "echo 'a warning line'; done\n[ \"$1\" = fail ] && echo 'error: boom' && exit 3\nexit 0\n")
    tool.chmod(0o755)
    log = io.StringIO()
    run_with_progress([str(tool)], "JUCE build of X", stream=log)
    lines = log.getvalue().splitlines()
    assert 2 <= len(lines) <= 11 and lines[-1] == "JUCE build of X: [200/200]", lines
    assert all(line.startswith("JUCE build of X: [") for line in lines)
    with pytest.raises(ToolchainError, match=r"(?s)exit 3.*error: boom"):
        run_with_progress([str(tool), "fail"], "JUCE build of X", stream=io.StringIO())
