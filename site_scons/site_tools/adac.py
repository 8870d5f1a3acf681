"""SCons tool for adac: one Builder per artefact of a plugin.

    checkpoint + factory --AdacIR--> <Name>.json --AdacDSP--> <Name>.dsp --AdacJuce--> juce/ --AdacPlugin--> <Name>.bundles.json
                                        '--AdacCert--> <Name>.cert.json (gates the JUCE project)      (+ bundles/)
    release mode: the artefacts --AdacPackage--> release/<Name>-<version>/ (copies, stripped bundles,
                  release-manifest.json: path + sha256 of each) --AdacRelease--> release/release-manifest.json

Signatures are content hashes. Each step's parameters enter its signature as a ``Value`` node
made of only the manifest fields that step reads (``adac.build.manifest.step_parameters``): editing a
control rebuilds the .dsp and what follows, not the IR. adac's own modules are dependencies of
the steps that import them. Heavy imports (torch, FLAMO) happen only inside the actions, which
run ``$ADAC`` (``$ADAC_PYTHON -m adac``); the manifests are validated by the same Python once per
change of their content and the result cached in ``$ADAC_BUILD_ROOT/.adac-plan.json``, so reading
the SConstruct starts no Python process on a no-op build.

Construction variables (override them in the SConstruct or on the command line where it passes them):

    ADAC_PYTHON        python with adac, torch and FLAMO installed (python3)
    ADAC               the adac command ($ADAC_PYTHON -m adac)
    ADAC_BUILD_ROOT    absolute build folder; every output lies inside it
    ADAC_FLAGS         flags before the step command (--build-root $ADAC_BUILD_ROOT)
    ADAC_JUCE_BUILD    JUCE build tree shared by all plugins ($ADAC_BUILD_ROOT/juce-build)
    ADAC_JUCE_CONFIG   CMake build type (Release)
    ADAC_JOBS          parallel compile jobs for the JUCE build (2; not part of any signature)
    ADAC_<STEP>COM, ADAC_<STEP>COMSTR   the command and its short message, STEP in
                       IR, DSP, CERT, JUCE, PLUGIN, PACKAGE, RELEASE, INSTALL
"""
import json
import os
import subprocess
import sys

import SCons.Action
import SCons.Builder
import SCons.Errors
import SCons.Script

# Files adac.backends.juce.export_juce writes into a project folder (tests/test_scons_build.py checks this list).
JUCE_PROJECT_FILES = (
    "CMakeLists.txt", "FaustDsp.cpp", "FaustDsp.h", "PluginProcessor.cpp", "PluginConfig.h", "adac_project.json",
    "cmake/AdacJuceModules.cmake",
    "faust_include/faust/export.h", "faust_include/faust/dsp/dsp.h", "faust_include/faust/gui/UI.h",
    "faust_include/faust/gui/meta.h", "faust_include/faust/gui/PathBuilder.h",
)

# The stages (adac/ subpackages) each step runs, besides the build stage and the common base that
# every step runs (see docs/architecture.md: imports only point down the stages, so a step's code is
# the files of these folders).
COMMON = ("__init__.py", "__main__.py", "build", "common")
STEP_STAGES = {"IR": ("frontend", "ir"), "DSP": ("backends/faust", "analysis", "ir"),
               "CERT": ("certificate", "analysis", "ir"),
               "JUCE": ("backends/juce", "backends/faust", "analysis", "ir"), "PLUGIN": ("backends/juce", "backends/faust"),
               "PACKAGE": ("backends/juce", "backends/faust")}
STEP_SCHEMAS = {"IR": ("ir.schema.json",), "CERT": ("cert.schema.json",)}


def _python_files(path):
    if os.path.isfile(path):
        return [path]
    return sorted(os.path.join(folder, f) for folder, _, files in os.walk(path) for f in files if f.endswith(".py"))


def compiler_dependencies(env, step):
    """The adac files and schemas a step's output depends on (a new adac rebuilds what it generates)."""
    top = env.Dir("#").abspath
    adac_dir = os.path.join(top, "adac")
    files = sorted({f for part in COMMON + STEP_STAGES.get(step, ()) for f in _python_files(os.path.join(adac_dir, part))})
    schemas = ("manifest.schema.json",) + STEP_SCHEMAS.get(step, ())
    return [env.File(f) for f in files] + [env.File(os.path.join(top, "schemas", s)) for s in schemas]


# -------------------------------------------------------------------------------------- manifests

def _digest(*paths):
    import hashlib

    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            digest.update(path.encode() + b"\0" + handle.read() + b"\0")
    return digest.hexdigest()


def AdacPlan(env, manifests):
    """Validated build plans of ``manifests`` (see ``adac.manifest.build_plan``), cached by content.

    A manifest error stops SCons before anything builds, with adac's message (file, line, field).
    """
    top = env.Dir("#").abspath
    python = env.subst("$ADAC_PYTHON")
    code = [os.path.join(top, "adac", "build", "manifest.py"), os.path.join(top, "schemas", "manifest.schema.json")]
    key = {"python": python, "digest": _digest(*code, *manifests), "manifests": list(manifests)}
    cache_path = os.path.join(env.subst("$ADAC_BUILD_ROOT"), ".adac-plan.json")
    try:
        with open(cache_path, encoding="utf-8") as handle:
            cached = json.load(handle)
        tools_there = all(t is None or t.get("metadata") is None or os.path.exists(t["metadata"])
                          for t in cached["plan"]["tools"].values())
        if cached["key"] == key and tools_there:
            return cached["plan"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    if not manifests:
        return {"manifests": {}, "tools": {}}
    cmd = python.split() + ["-m", "adac", "plan", *manifests]
    try:
        proc = subprocess.run(cmd, cwd=top, capture_output=True, text=True)
    except OSError as exc:
        raise SCons.Errors.UserError(f"cannot run ADAC_PYTHON={python!r}: {exc}")
    if proc.returncode != 0:
        message = proc.stderr.strip() or proc.stdout.strip()
        if "No module named" in message:
            message += f"\n(ADAC_PYTHON={python} must have adac's dependencies: run scripts/setup.sh)"
        sys.stderr.write(message + "\n")
        SCons.Script.Exit(2)
    plan = json.loads(proc.stdout)
    os.makedirs(os.path.dirname(cache_path), exist_ok=True)
    tmp = f"{cache_path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump({"key": key, "plan": plan}, handle, sort_keys=True)
    os.replace(tmp, cache_path)
    return plan


def _value(env, fields):
    """A Value node of the fields one step reads (sorted JSON: a stable signature)."""
    return env.Value(json.dumps(fields, sort_keys=True))


def _inside(env, path, what):
    root = os.path.realpath(env.subst("$ADAC_BUILD_ROOT"))
    real = os.path.realpath(path)
    if real == root or os.path.commonpath([root, real]) != root:
        raise SCons.Errors.UserError(f"{what} {real} is outside the build tree {root}")
    return real


def AdacPluginTargets(env, manifest_path, plan, tools=None, steps=("ir", "dsp", "cert", "plugin"), release=False):
    """Declare every artefact of one plugin; returns ``{step: nodes}`` (ir, dsp, cert, juce, plugin, release).

    Artefacts go to ``$ADAC_BUILD_ROOT/<output>``; with ``release``, a packaging step copies them to
    ``$ADAC_BUILD_ROOT/release/<output>-<version>/`` (stripped bundles) with a release-manifest.json.
    """
    name = plan["name"]
    root = env.subst("$ADAC_BUILD_ROOT")
    # adac.manifest refused '..' and absolute paths already; this also catches symlinks out of the tree
    out = env.Dir(_inside(env, os.path.join(root, plan["output"]), f"{manifest_path}: /output:"))
    env = env.Clone(ADAC_MANIFEST=env.File(manifest_path).abspath)
    params = plan["params"]

    sources = [env.File(plan["checkpoint"])]
    if plan.get("factory_file"):
        sources.append(env.File(plan["factory_file"]))
    ir_params = dict(params["ir"], tools={k: (v or {}).get("version") for k, v in (tools or {}).items()})
    ir = env.AdacIR(out.File(f"{name}.json"), sources + [_value(env, ir_params)])
    env.Depends(ir, compiler_dependencies(env, "IR"))
    nodes = {"ir": ir}

    if "dsp" in steps or "plugin" in steps:
        nodes["dsp"] = env.AdacDSP(out.File(f"{name}.dsp"), [ir[0], _value(env, params["dsp"])])
        env.Depends(nodes["dsp"], compiler_dependencies(env, "DSP"))
    if "cert" in steps:
        nodes["cert"] = env.AdacCert(out.File(f"{name}.cert.json"), [ir[0], _value(env, params["cert"])])
        env.Depends(nodes["cert"], compiler_dependencies(env, "CERT"))
    if "plugin" in steps:
        juce = env.AdacJuce(out.Dir("juce"), [nodes["dsp"][0], _value(env, params["juce"])])
        env.Precious(juce)  # unchanged files keep their mtime: Ninja recompiles only what a change touches
        env.Depends(juce, compiler_dependencies(env, "JUCE") + env.Glob("#juce_template/*")
                    + env.Glob("#faust/arch/juce/*"))
        if "cert" in nodes:
            env.Depends(juce, nodes["cert"])  # a refused certificate stops the plugin
        nodes["juce"] = juce
        plugin = env.AdacPlugin(out.File(f"{name}.bundles.json"), juce + [_value(env, params["plugin"])])
        env.Depends(plugin, compiler_dependencies(env, "PLUGIN"))
        env.SideEffect(env.File("$ADAC_JUCE_BUILD/.adac-build.lock"), plugin)  # one CMake build per tree at a time
        env.Clean(plugin, out.Dir("bundles"))
        nodes["plugin"] = plugin
    if release:
        folder = env.Dir(_inside(env, os.path.join(root, "release", f"{plan['output']}-{plan['version']}"),
                                 f"{manifest_path}: /output:"))
        artefacts = [nodes[s][0] for s in ("ir", "dsp", "cert", "plugin") if s in nodes]
        package = env.AdacPackage(folder.File("release-manifest.json"), artefacts)
        env.Depends(package, compiler_dependencies(env, "PACKAGE"))
        env.Clean(package, folder)
        nodes["release"] = package
    return nodes


# ------------------------------------------------------------------------------------------ emitters

def _juce_emitter(target, source, env):
    project = target[0]
    return [project.File(f) for f in JUCE_PROJECT_FILES], source


def _plugin_emitter(target, source, env):
    # the bundles are folders (copied to <out>/bundles/ and listed with their sha256 in the target)
    return target, source


def _package_emitter(target, source, env):
    """The release folder receives a copy of each source (bundles: in bundles/, listed by the copied listing)."""
    folder = target[0].dir
    return [target[0]] + [folder.File(s.name) for s in source], source


def _step(name, command, message):
    return {f"ADAC_{name}COM": command, f"ADAC_{name}COMSTR": message}


def generate(env):
    env.SetDefault(
        ADAC_PYTHON="python3",  # the PATH python with adac installed (scons itself runs under another)
        ADAC="$ADAC_PYTHON -m adac",
        ADAC_BUILD_ROOT=env.Dir("#build").abspath,
        ADAC_FLAGS="--build-root $ADAC_BUILD_ROOT",
        ADAC_JUCE_BUILD="$ADAC_BUILD_ROOT/juce-build",
        ADAC_JUCE_CONFIG="Release",
        ADAC_JOBS=2,
        ADAC_INSTALLFLAGS="",
        **_step("IR", "$ADAC $ADAC_FLAGS build-ir $ADAC_MANIFEST $TARGET", "adac ir      $TARGET"),
        **_step("DSP", "$ADAC $ADAC_FLAGS emit $ADAC_MANIFEST ${SOURCES[0]} $TARGET", "adac dsp     $TARGET"),
        **_step("CERT", "$ADAC $ADAC_FLAGS certify $ADAC_MANIFEST ${SOURCES[0]} $TARGET", "adac cert    $TARGET"),
        **_step("JUCE", "$ADAC $ADAC_FLAGS juce $ADAC_MANIFEST ${SOURCES[0]} ${TARGET.dir}", "adac juce    ${TARGET.dir}"),
        **_step("PLUGIN", "$ADAC $ADAC_FLAGS plugin --juce-build $ADAC_JUCE_BUILD "
                          "--config $ADAC_JUCE_CONFIG $( --jobs $ADAC_JOBS $) $ADAC_MANIFEST ${SOURCES[0].dir} $TARGET",
                "adac plugin  $TARGET"),
        **_step("PACKAGE", "$ADAC $ADAC_FLAGS package $ADAC_MANIFEST ${TARGET.dir} $SOURCES", "adac package ${TARGET.dir}"),
        **_step("RELEASE", "$ADAC $ADAC_FLAGS release-manifest $TARGET $SOURCES", "adac release $TARGET"),
        **_step("INSTALL", "$ADAC $ADAC_FLAGS install $SOURCE $TARGET $ADAC_INSTALLFLAGS",
                "adac install ${SOURCE.filebase}"),
    )

    def action(step):
        return SCons.Action.Action(f"$ADAC_{step}COM", f"$ADAC_{step}COMSTR")

    builders = env["BUILDERS"]
    builders["AdacIR"] = SCons.Builder.Builder(action=action("IR"), suffix=".json")
    builders["AdacDSP"] = SCons.Builder.Builder(action=action("DSP"), suffix=".dsp")
    builders["AdacCert"] = SCons.Builder.Builder(action=action("CERT"), suffix=".cert.json")
    builders["AdacJuce"] = SCons.Builder.Builder(action=action("JUCE"), emitter=_juce_emitter,
                                                 target_factory=env.fs.Dir)
    builders["AdacPlugin"] = SCons.Builder.Builder(action=action("PLUGIN"), emitter=_plugin_emitter,
                                                   suffix=".bundles.json")
    builders["AdacPackage"] = SCons.Builder.Builder(action=action("PACKAGE"), emitter=_package_emitter)
    builders["AdacRelease"] = SCons.Builder.Builder(action=action("RELEASE"))
    builders["AdacInstall"] = SCons.Builder.Builder(action=action("INSTALL"))
    env.AddMethod(AdacPlan)
    env.AddMethod(AdacPluginTargets)


def exists(env):
    return True
