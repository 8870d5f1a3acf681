"""SCons tool for adac: one Builder per artefact of a plugin.

    checkpoint + factory --AdacIR--> <Name>.json --AdacDSP--> <Name>.dsp --AdacJuce--> juce/ --AdacPlugin--> <Name>.bundles.json
                                        |--AdacCert--> <Name>.cert.json (gates the JUCE project)      (+ bundles/)
                                        '--AdacBackend--> backend.json (with the .dsp; manifest backend: auto)
    The JUCE project reads the IR too when the manifest's backend is native or auto (and then backend.json).
    IR + .dsp + certificate (+ bundle listing) --AdacReport--> report/index.html (the report page, in the
                  default build with the plugin; alias plugins/<Name>/report)
    release mode: the artefacts --AdacPackage--> release/<Name>-<version>/ (copies, stripped bundles,
                  release-manifest.json: path + sha256 of each) --AdacRelease--> release/release-manifest.json
    AdacInstall: a bundle listing -> ~/.vst3, ... ; AdacHotReload: the hot-reload hosts

Use it from any project (the module imports only the standard library and SCons)::

    import adac.build
    env = Environment(tools=["default", "adac"], toolpath=[adac.build.scons_toolpath()])

Signatures are content hashes. Each step's parameters enter its signature as a ``Value`` node
made of only the manifest fields that step reads (``adac.build.manifest.step_parameters``): editing a
control rebuilds the .dsp and what follows, not the IR. The steps that run the FAUST compiler (JUCE
project, plugin) also have its version (``$ADAC_FAUST --version``) in that Value. adac's own modules
are dependencies of the steps that import them. The IR step's implicit dependencies (the factory's
file and every module it imports from the plugin's folder, recursively) are found by a Scanner
(``AdacFactoryScanner``). Heavy imports (torch, FLAMO) happen only inside the actions, which run
``$ADAC`` (``$ADAC_PYTHON -m adac``); the manifests are validated by the same Python once per change
of their content and the result cached in ``$ADAC_BUILD_ROOT/.adac-plan.json``, so reading the
SConstruct starts no Python process on a no-op build.

Every path the tool puts on a command line is one shell word, quoted with ``shlex.quote`` (the
builders' ``ESCAPE``): a plugin folder named ``b`touch pwned``` or ``Bob's`` is a name, not code.

Construction variables (override them in the SConstruct or on the command line where it passes them):

    ADAC_PYTHON        python with adac, torch and FLAMO installed (env.Detect: python3, python)
    ADAC_FAUST         FAUST compiler (env.Detect: faust); the steps get it as $ADAC_FAUST
    ADAC_CXX           C++ compiler (ENV's CXX, else env.Detect: g++, c++, clang++); the steps get it as $CXX
    ADAC_CMAKE         cmake (env.Detect); the steps get it as $ADAC_CMAKE
    ADAC_NINJA         ninja (env.Detect: ninja, ninja-build); ADAC_STRIP  strip (env.Detect). The steps get
                       them as $ADAC_NINJA / $ADAC_STRIP
    ADAC               the adac command ($ADAC_PYTHON -m adac)
    ADAC_BUILD_ROOT    absolute build folder; every output lies inside it
    ADAC_FLAGS         flags before the step command (CLVar: --build-root $ADAC_BUILD_ROOT, not in the signatures)
    ADAC_<STEP>FLAGS   flags of one step (CLVar), after its command name
    ADAC_JUCE_BUILD    JUCE build tree shared by all plugins ($ADAC_BUILD_ROOT/juce-build)
    ADAC_JUCE_CONFIG   CMake build type (Release)
    ADAC_JOBS          parallel compile jobs for the JUCE build (2; not part of any signature)
    ADAC_PREFIX        install under this folder instead of the home folder ("": the home folder)
    ADAC_JUCE_IR, ADAC_JUCE_CHOICE   the JUCE step's --ir and --backend-choice (set per plugin: the IR with the
                       manifest's backend native or auto, backend.json with auto; "": not passed)
    ADAC_<STEP>COM, ADAC_<STEP>COMSTR   the command and its short message, STEP in
                       IR, DSP, CERT, BACKEND, JUCE, PLUGIN, REPORT, PACKAGE, RELEASE, INSTALL, HOTRELOAD
"""
import ast
import hashlib
import importlib.util
import glob
import json
import os
import shlex
import subprocess
import sys

import SCons.Action
import SCons.Builder
import SCons.Errors
import SCons.Scanner
import SCons.Subst
import SCons.Util

STEPS = ("IR", "DSP", "CERT", "BACKEND", "JUCE", "PLUGIN", "REPORT", "PACKAGE", "RELEASE", "INSTALL", "HOTRELOAD")

# The adac package this tool belongs to (adac/build/scons/adac.py -> adac/), and its data folders: the
# installed package's copy (adac/_data/<name>), else the checkout's top-level folder (as adac.common.resources).
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def data_dir(name):
    for folder in (os.path.join(PACKAGE_DIR, "_data", name), os.path.join(os.path.dirname(PACKAGE_DIR), name)):
        if os.path.isdir(folder):
            return folder
    raise SCons.Errors.UserError(f"adac's data folder {name!r} is missing beside {PACKAGE_DIR}: reinstall adac")


# The stages (adac/ subpackages) each step runs, besides the build stage and the common base that
# every step runs (see docs/architecture.md: imports only point down the stages, so a step's code is
# the files of these folders).
COMMON = ("__init__.py", "__main__.py", "build", "common")
STEP_STAGES = {"IR": ("frontend", "ir"), "DSP": ("backends/faust", "analysis", "ir"),
               "CERT": ("certificate", "analysis", "ir"),
               "BACKEND": ("backends/native", "backends/juce", "backends/faust", "analysis", "ir"),
               "JUCE": ("backends/juce", "backends/native", "backends/faust", "analysis", "ir"),
               "PLUGIN": ("backends/juce", "backends/faust"),
               "REPORT": ("report", "equivalence", "certificate", "frontend", "backends/faust", "analysis", "ir"),
               "PACKAGE": ("backends/juce", "backends/faust"), "HOTRELOAD": ("hotreload", "backends/juce")}
STEP_SCHEMAS = {"IR": ("ir.schema.json",), "CERT": ("cert.schema.json",)}

# External programs: construction variable -> (environment variable adac's code reads, programs env.Detect tries)
PROGRAMS = {
    "ADAC_PYTHON": (None, ("python3", "python")),
    "ADAC_FAUST": ("ADAC_FAUST", ("faust",)),
    "ADAC_CXX": ("CXX", ("g++", "c++", "clang++")),
    "ADAC_CMAKE": ("ADAC_CMAKE", ("cmake",)),
    "ADAC_NINJA": ("ADAC_NINJA", ("ninja", "ninja-build")),
    "ADAC_STRIP": ("ADAC_STRIP", ("strip",)),
}


def _python_files(path):
    if os.path.isfile(path):
        return [path]
    tool = os.path.dirname(os.path.abspath(__file__))  # this tool is not code a step runs
    return sorted(os.path.join(folder, f) for folder, _, files in os.walk(path) for f in files
                  if f.endswith(".py") and folder != tool and not folder.startswith(tool + os.sep))


def _files(env, folder):
    """Every file under ``folder`` (File nodes, sorted)."""
    return [env.fs.File(os.path.join(here, f)) for here, _, files in sorted(os.walk(folder)) for f in sorted(files)]


def compiler_dependencies(env, step):
    """The adac files and schemas a step's output depends on (a new adac rebuilds what it generates); the
    report's also its page's static files (adac/report/*.js, *.css)."""
    files = sorted({f for part in COMMON + STEP_STAGES.get(step, ())
                    for f in _python_files(os.path.join(PACKAGE_DIR, part))})
    if step == "REPORT":
        files += sorted(glob.glob(os.path.join(PACKAGE_DIR, "report", "*.js"))
                        + glob.glob(os.path.join(PACKAGE_DIR, "report", "*.css")))
    schemas = ("manifest.schema.json",) + STEP_SCHEMAS.get(step, ())
    return [env.fs.File(f) for f in files] + [env.fs.File(os.path.join(data_dir("schemas"), s)) for s in schemas]


# ------------------------------------------------------------------------------- programs, quoting

def _default_program(env, variable):
    """ENV's setting of the variable adac's code reads (the user's choice), else the first program found."""
    name, programs = PROGRAMS[variable]
    given = env["ENV"].get(name) if name else None
    return given or env.Detect(list(programs)) or programs[0]


def step_environment(env):
    """The process environment of the steps: ``ENV`` plus each program variable under the name adac's code
    reads (ADAC_FAUST, CXX, ADAC_CMAKE, ADAC_NINJA, ADAC_STRIP)."""
    ENV = dict(env["ENV"])
    for variable, (name, _) in PROGRAMS.items():
        if name:
            ENV[name] = env.subst(f"${variable}", raw=1)
    return ENV


def _shell_escape(arg):
    """One shell word (SCons' posix ESCAPE double-quotes, which leaves backticks live)."""
    return shlex.quote(str(arg))


class Path(SCons.Subst.Literal):
    """A path as one literal word of a command line (quoted by ESCAPE when it runs); in the signature, its
    ``$`` are doubled so that a folder named ``$(x`` is not taken for SCons' ``$(``...``$)`` markers."""

    def for_signature(self):
        return self.lstr.replace("$", "$$")


def _adac_path(value, env):
    """``${_adac_path(VAR, __env__)}``: the variable's path (a string is substituted first) as a :class:`Path`."""
    if SCons.Util.is_String(value):
        value = env.subst(value, raw=1)
    return Path(str(value))


def _adac_option(flag, value, env):
    """``${_adac_option("--flag", VAR, __env__)}``: ``--flag PATH`` when the variable is set, else nothing."""
    if SCons.Util.is_String(value):
        value = env.subst(value, raw=1)
    return [flag, Path(str(value))] if value else []


_FAUST_VERSIONS = {}


def faust_version(env):
    """First line of ``$ADAC_FAUST --version``: computed once per compiler file (path, size, mtime), cached
    in memory and in ``$ADAC_BUILD_ROOT/.adac-tools.json`` so a no-op build starts no compiler."""
    program = env.subst("$ADAC_FAUST", raw=1)
    exe = program if os.path.dirname(program) else env.WhereIs(program)
    if not exe or not os.path.isfile(exe):
        return f"{program}: not found"
    real = os.path.realpath(exe)
    stat = os.stat(real)
    key = f"{real}:{stat.st_size}:{stat.st_mtime_ns}"
    if key in _FAUST_VERSIONS:
        return _FAUST_VERSIONS[key]
    cache_path = os.path.join(env.subst("$ADAC_BUILD_ROOT", raw=1), ".adac-tools.json")
    try:
        with open(cache_path, encoding="utf-8") as handle:
            cached = json.load(handle)
        if not isinstance(cached, dict):
            cached = {}
    except (OSError, ValueError):
        cached = {}
    version = cached.get(key)
    if not isinstance(version, str):
        try:
            proc = subprocess.run([real, "--version"], capture_output=True, text=True, timeout=60)
            version = (proc.stdout.strip().splitlines() or [f"{program}: exit {proc.returncode}"])[0]
        except (OSError, subprocess.SubprocessError) as exc:
            version = f"{program}: {exc}"
        cached[key] = version
        try:
            os.makedirs(os.path.dirname(cache_path), exist_ok=True)
            tmp = f"{cache_path}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(cached, handle, sort_keys=True)
            os.replace(tmp, cache_path)
        except OSError:
            pass  # only a cache
    _FAUST_VERSIONS[key] = version
    return version


# ------------------------------------------------------------------------- the factory's imports

def _module_files(root, dotted):
    """The files of ``root`` that importing ``dotted`` executes, with their module names (packages'
    ``__init__.py`` included; stops where the name leaves ``root``, i.e. is an installed module)."""
    found, here, parts = [], root, []
    for part in dotted.split("."):
        parts.append(part)
        base = os.path.join(here, part)
        if os.path.isfile(os.path.join(base, "__init__.py")):
            found.append((os.path.join(base, "__init__.py"), ".".join(parts)))
            here = base
        elif os.path.isfile(base + ".py"):
            found.append((base + ".py", ".".join(parts)))
            break
        elif os.path.isdir(base):  # namespace package
            here = base
        else:
            break
    return found


def _imported_names(tree, package):
    """Absolute names of the modules a module's code imports (function-level imports included)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if not package:
                    continue  # a top-level module cannot import relatively
                parts = package.split(".")
                if node.level - 1 >= len(parts):
                    continue
                base = ".".join(parts[:len(parts) - (node.level - 1)])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module
            yield module
            for alias in node.names:
                if alias.name != "*":
                    yield f"{module}.{alias.name}"  # a submodule, when it is one


def factory_sources(folder, factory):
    """The factory's file and every module it imports from its own folder, recursively (sorted paths).

    ``factory`` is the manifest's ``model.factory``: ``file.py:function`` (the file's folder is searched
    first, as adac loads it) or ``module:function`` (the manifest's folder).
    """
    target = factory.rpartition(":")[0]
    if target.endswith(".py"):
        path = os.path.normpath(os.path.join(folder, target))
        root = os.path.dirname(path)
        queue = [(path, "")] if os.path.isfile(path) else []  # loaded as a top-level module of its own
    else:
        root = folder
        queue = _module_files(root, target)
    seen = {}
    while queue:
        path, module = queue.pop()
        if path in seen:
            continue
        seen[path] = module
        try:
            with open(path, "rb") as handle:
                tree = ast.parse(handle.read(), path)
        except (OSError, SyntaxError, ValueError):
            continue  # the IR step reports a broken factory
        package = module if os.path.basename(path) == "__init__.py" else module.rpartition(".")[0]
        for name in _imported_names(tree, package):
            queue.extend(_module_files(root, name))
    return sorted(seen)


def _scan_factory(node, env, path=()):
    """Target scanner of the IR step: the factory's sources ($ADAC_FACTORY beside $ADAC_MANIFEST)."""
    factory = env.get("ADAC_FACTORY")
    manifest = env.get("ADAC_MANIFEST")
    if not factory or manifest is None:
        return []
    folder = manifest.dir.abspath if hasattr(manifest, "dir") else os.path.dirname(os.path.abspath(env.subst(manifest, raw=1)))
    return [env.fs.File(f) for f in factory_sources(folder, factory)]


FactoryScanner = SCons.Scanner.Scanner(function=_scan_factory, name="AdacFactoryScanner")


# -------------------------------------------------------------------------------------- manifests

def _digest(*paths):
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            digest.update(path.encode() + b"\0" + handle.read() + b"\0")
    return digest.hexdigest()


def AdacPlan(env, manifests):
    """Validated build plans of ``manifests`` (see ``adac.build.manifest.build_plan``), cached by content.

    A manifest error stops SCons before anything builds, with adac's message (file, line, field).
    """
    import SCons.Script

    top = env.Dir("#").abspath
    python = env.subst("$ADAC_PYTHON", raw=1)
    code = [os.path.join(PACKAGE_DIR, "build", "manifest.py"), os.path.join(data_dir("schemas"), "manifest.schema.json")]
    key = {"python": python, "digest": _digest(*code, *manifests), "manifests": list(manifests)}
    cache_path = os.path.join(env.subst("$ADAC_BUILD_ROOT", raw=1), ".adac-plan.json")
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
    cmd = shlex.split(python) + ["-m", "adac", "plan", *manifests]  # an argv list: no shell
    try:
        proc = subprocess.run(cmd, cwd=top, capture_output=True, text=True, env=step_environment(env))
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


def lock_file(env):
    """The lock of the shared JUCE build tree: a SideEffect of every step that builds in it (one at a time)."""
    return env.fs.File(os.path.join(env.subst("$ADAC_JUCE_BUILD", raw=1), ".adac-build.lock"))


def _value(env, fields):
    """A Value node of the fields one step reads (sorted JSON: a stable signature)."""
    return env.Value(json.dumps(fields, sort_keys=True))


def _inside(env, path, what):
    root = os.path.realpath(env.subst("$ADAC_BUILD_ROOT", raw=1))
    real = os.path.realpath(path)
    if real == root or os.path.commonpath([root, real]) != root:
        raise SCons.Errors.UserError(f"{what} {real} is outside the build tree {root}")
    return real


def AdacPluginTargets(env, manifest_path, plan, tools=None, steps=("ir", "dsp", "cert", "plugin"), release=False):
    """Declare every artefact of one plugin; returns ``{step: nodes}`` (ir, dsp, cert, juce, plugin, report,
    release).

    Artefacts go to ``$ADAC_BUILD_ROOT/<output>``; with ``release``, a packaging step copies them to
    ``$ADAC_BUILD_ROOT/release/<output>-<version>/`` (stripped bundles) with a release-manifest.json.
    The report page (``<output>/report/index.html``) is declared with the .dsp and the certificate; it is
    built by default (and released) with the plugin, whose cost it measures (``"report" in steps`` asks
    for it without the plugin), and otherwise on request (alias ``plugins/<Name>/report``).
    Paths are taken as they are (``env.fs``): a ``$`` in a folder name is not a variable.
    """
    name = plan["name"]
    root = env.subst("$ADAC_BUILD_ROOT", raw=1)
    # adac.build.manifest refused '..' and absolute paths already; this also catches symlinks out of the tree
    out = env.fs.Dir(_inside(env, os.path.join(root, plan["output"]), f"{manifest_path}: /output:"))
    params = plan["params"]
    env = env.Clone(ADAC_MANIFEST=env.fs.File(manifest_path), ADAC_FACTORY=params["ir"]["factory"])
    env["ENV"] = step_environment(env)

    ir_params = dict(params["ir"], tools={k: (v or {}).get("version") for k, v in (tools or {}).items()})
    # the factory's file and the modules it imports from its folder: found by the builder's scanner
    ir = env.AdacIR(out.File(f"{name}.json"), [env.fs.File(plan["checkpoint"]), _value(env, ir_params)])
    env.Depends(ir, compiler_dependencies(env, "IR"))
    nodes = {"ir": ir}

    if "dsp" in steps or "plugin" in steps:
        nodes["dsp"] = env.AdacDSP(out.File(f"{name}.dsp"), [ir[0], _value(env, params["dsp"])])
        env.Depends(nodes["dsp"], compiler_dependencies(env, "DSP"))
    if "cert" in steps:
        nodes["cert"] = env.AdacCert(out.File(f"{name}.cert.json"), [ir[0], _value(env, params["cert"])])
        env.Depends(nodes["cert"], compiler_dependencies(env, "CERT"))
    if "plugin" in steps:
        faust = faust_version(env)  # the JUCE project and the plugin run the FAUST compiler
        inputs, options = [nodes["dsp"][0]], {}
        if plan["backend"] != "faust":  # the native kernel's classes are made from the IR
            inputs.append(ir[0])
            options["ADAC_JUCE_IR"] = ir[0]
        if plan["backend"] == "auto":  # the faster realisation, measured on this machine
            choice = env.AdacBackend(out.File("backend.json"),
                                     [ir[0], nodes["dsp"][0], _value(env, dict(params["backend"], faust=faust))])
            env.Depends(choice, compiler_dependencies(env, "BACKEND")
                        + [env.fs.File(os.path.join(data_dir("faust"), "arch", "timing.cpp"))])
            env.SideEffect(lock_file(env), choice)  # not timed while a plugin compiles beside it
            env.NoCache(choice)  # a measurement of this machine, not a function of its sources
            inputs.append(choice[0])
            options["ADAC_JUCE_CHOICE"] = choice[0]
            nodes["backend"] = choice
        juce = env.AdacJuce(out.Dir("juce"), inputs + [_value(env, dict(params["juce"], faust=faust))], **options)
        env.Precious(juce)  # unchanged files keep their mtime: Ninja recompiles only what a change touches
        env.Depends(juce, compiler_dependencies(env, "JUCE") + _files(env, data_dir("juce_template"))
                    + _files(env, os.path.join(data_dir("faust"), "arch", "juce")))
        if "cert" in nodes:
            env.Depends(juce, nodes["cert"])  # a refused certificate stops the plugin
        nodes["juce"] = juce
        plugin = env.AdacPlugin(out.File(f"{name}.bundles.json"), juce + [_value(env, dict(params["plugin"], faust=faust))])
        env.Depends(plugin, compiler_dependencies(env, "PLUGIN"))
        env.SideEffect(lock_file(env), plugin)  # one CMake build per tree at a time
        env.Clean(plugin, out.Dir("bundles"))
        env.NoCache(plugin)  # its bundles/ folder is no declared target: a CacheDir could not restore it
        nodes["plugin"] = plugin
    if "dsp" in nodes and "cert" in nodes:
        listing = [nodes["plugin"][0]] if "plugin" in nodes else []
        report = env.AdacReport(out.Dir("report").File("index.html"),
                                [ir[0], nodes["dsp"][0], nodes["cert"][0], *listing,
                                 _value(env, dict(params["dsp"], faust=faust_version(env)))],
                                ADAC_REPORT_BUNDLES=listing[0] if listing else "")
        env.Depends(report, compiler_dependencies(env, "REPORT"))
        env.Clean(report, out.Dir("report"))
        env.NoCache(report)  # the page's other files (figures, sounds, scripts) are no declared targets
        nodes["report"] = report
    if release:
        folder = env.fs.Dir(_inside(env, os.path.join(root, "release", f"{plan['output']}-{plan['version']}"),
                                    f"{manifest_path}: /output:"))
        artefacts = [nodes[s][0] for s in ("ir", "dsp", "cert", "plugin") + (("report",) if report_by_default(steps) else ())
                     if s in nodes]
        package = env.AdacPackage(folder.File("release-manifest.json"), artefacts)
        env.Depends(package, compiler_dependencies(env, "PACKAGE"))
        env.Clean(package, folder)
        env.NoCache(package)  # the stripped bundles it copies are no declared targets
        nodes["release"] = package
    return nodes


def report_by_default(steps):
    """The report page comes with the plugin (it measures the plugin's cost), or when asked for by name."""
    return "plugin" in steps or "report" in steps


def AdacCache(env, folder):
    """A build cache shared by clones, colleagues and CI runners, in ``folder``:

    * SCons' ``CacheDir(folder)``: the IR, ``.dsp``, certificate and JUCE project are fetched by signature;
    * ``folder/ccache`` for the C++ build of the plugins (ccache, when installed: the JUCE build uses it as
      its compiler launcher), with paths taken relative to the project (``CCACHE_BASEDIR``) so another clone
      in another folder hits it: a warm cache builds a plugin with no C++ compilation, only links.
    """
    folder = os.path.abspath(os.path.expanduser(folder))
    env.CacheDir(folder)
    # time_macros: juce_core.cpp expands __DATE__/__TIME__ (JUCE's compilation date), which would make it
    # miss every time; a cached object keeps the date of its first build
    env["ENV"].update(CCACHE_DIR=os.path.join(folder, "ccache"), CCACHE_BASEDIR=env.Dir("#").abspath,
                      CCACHE_NOHASHDIR="1", CCACHE_SLOPPINESS="time_macros")


def AdacProject(env, plugins_dir, steps=("ir", "dsp", "cert", "plugin"), release=False):
    """Every ``<plugins_dir>/<Name>/plugin.yaml`` wired: its artefacts, the aliases ``plugins/<Name>`` and
    ``plugins/<Name>/<step>``, ``install``, ``release`` (and the combined release manifest). Returns the
    default targets. A name or output folder used by two plugins stops SCons with both manifests named."""
    top = env.Dir("#").abspath
    manifests = sorted(os.path.relpath(p, top) if p.startswith(top + os.sep) else p
                       for p in glob.glob(os.path.join(env.Dir(plugins_dir).abspath, "*", "plugin.yaml")))
    plan = AdacPlan(env, manifests)
    seen = {}
    for manifest_path in manifests:
        fields = plan["manifests"][manifest_path]
        for key in (f"name {fields['name']}", f"output {fields['output']}"):
            if key in seen:
                raise SCons.Errors.UserError(f"{manifest_path}: {key} is also used by {seen[key]}; give each plugin its own")
            seen[key] = manifest_path
    defaults, release_parts = [], []
    for manifest_path in manifests:
        fields = plan["manifests"][manifest_path]
        released = release or fields["release"]
        nodes = AdacPluginTargets(env, manifest_path, fields, plan["tools"], steps=steps, release=released)
        alias = f"plugins/{os.path.basename(os.path.dirname(manifest_path))}"
        for step, node in nodes.items():
            env.Alias(f"{alias}/{step}", node)
        # plugins/<Name> is the edit-build loop (IR to bundles); the report page joins the default build
        defaults.append(env.Alias(alias, [node for step, node in nodes.items() if step != "report"]))
        if "report" in nodes and report_by_default(steps):
            defaults.append(nodes["report"])
        if "release" in nodes:
            release_parts.append(nodes["release"][0])
        if "plugin" in nodes:
            listing = nodes["release"][-1] if released else nodes["plugin"][0]  # release installs the stripped copies
            install = env.AdacInstall(env.fs.File(os.path.join(os.path.dirname(listing.abspath), "installed.json")),
                                      listing)
            env.AlwaysBuild(install)  # copying is cheap, and a bundle removed from ~/.vst3 comes back
            env.NoCache(install)
            env.Alias("install", install)
    if release_parts:
        root = env.subst("$ADAC_BUILD_ROOT")
        summary = env.AdacRelease(env.fs.File(os.path.join(root, "release", "release-manifest.json")), release_parts)
        env.Alias("release", summary)
        defaults.append(summary)
    return defaults


# ------------------------------------------------------------------------------------------ emitters

def juce_project_files():
    """The files adac.backends.juce.export_juce writes into a project folder (juce_template/project_files.json)."""
    with open(os.path.join(data_dir("juce_template"), "project_files.json"), encoding="utf-8") as handle:
        return json.load(handle)["files"]


def _juce_emitter(target, source, env):
    project = target[0]
    return [project.File(f) for f in juce_project_files()], source


def _package_emitter(target, source, env):
    """The release folder receives a copy of each source (bundles: in bundles/, listed by the copied listing;
    the report page: its folder, as report/)."""
    folder = target[0].dir
    return [target[0]] + [folder.Dir(s.dir.name).File(s.name) if s.name == "index.html" else folder.File(s.name)
                          for s in source], source


def _hotreload_emitter(target, source, env):
    """Without sources: the host's files (hosts/hotreload, the real-time check's header it includes, the JUCE
    modules' CMake and patch it builds with) and the adac code that builds it."""
    if not source:
        source = (_files(env, os.path.join(data_dir("hosts"), "hotreload"))
                  + [env.fs.File(os.path.join(data_dir("hosts"), "rtcheck", "rtcheck.h"))]
                  + [env.fs.File(os.path.join(data_dir("juce_template"), "AdacJuceModules.cmake"))]
                  + _files(env, os.path.join(data_dir("juce_template"), "patches")) + compiler_dependencies(env, "HOTRELOAD"))
    return target, source


def _step(name, command, message, flags=""):
    return {f"ADAC_{name}COM": command, f"ADAC_{name}COMSTR": message, f"ADAC_{name}FLAGS": SCons.Util.CLVar(flags)}


HOTRELOAD_CODE = ("import sys; from adac.hotreload.host import build_host; "
                  "build_host(sys.argv[1], juce_build=sys.argv[2], jobs=int(sys.argv[3]))")


def generate(env):
    for variable in PROGRAMS:
        if not env.get(variable):
            env[variable] = _default_program(env, variable)
    env.SetDefault(
        ADAC="$ADAC_PYTHON -m adac",
        ADAC_BUILD_ROOT=env.Dir("#build").abspath,
        # the build root only checks where outputs go: out of the signatures, so a CacheDir serves every clone
        ADAC_FLAGS=SCons.Util.CLVar("$( --build-root $_ADAC_BUILD_ROOT $)"),
        ADAC_JUCE_BUILD="$ADAC_BUILD_ROOT/juce-build",
        ADAC_JUCE_CONFIG="Release",
        ADAC_JOBS=2,
        ADAC_HOTRELOADCODE=SCons.Subst.Literal(HOTRELOAD_CODE),
        # paths as one quoted word each
        ADAC_PREFIX="",
        ADAC_REPORT_BUNDLES="",  # the report step's --bundles (the plugin's listing, when built with it)
        ADAC_JUCE_IR="",  # the JUCE step's --ir (backend native or auto: the IR)
        ADAC_JUCE_CHOICE="",  # the JUCE step's --backend-choice (backend auto: backend.json)
        _adac_path=_adac_path,
        _adac_option=_adac_option,
        _ADAC_BUILD_ROOT="${_adac_path(ADAC_BUILD_ROOT, __env__)}",
        _ADAC_JUCE_BUILD="${_adac_path(ADAC_JUCE_BUILD, __env__)}",
        _ADAC_MANIFEST="${_adac_path(ADAC_MANIFEST, __env__)}",
        **_step("IR", "$ADAC $ADAC_FLAGS build-ir $ADAC_IRFLAGS $_ADAC_MANIFEST $TARGET", "adac ir      $TARGET"),
        **_step("DSP", "$ADAC $ADAC_FLAGS emit $ADAC_DSPFLAGS $_ADAC_MANIFEST ${SOURCES[0]} $TARGET",
                "adac dsp     $TARGET"),
        **_step("CERT", "$ADAC $ADAC_FLAGS certify $ADAC_CERTFLAGS $_ADAC_MANIFEST ${SOURCES[0]} $TARGET",
                "adac cert    $TARGET"),
        **_step("BACKEND", "$ADAC $ADAC_FLAGS backend $ADAC_BACKENDFLAGS $_ADAC_MANIFEST ${SOURCES[0]} ${SOURCES[1]} "
                           "$TARGET", "adac backend $TARGET"),
        **_step("JUCE", "$ADAC $ADAC_FLAGS juce $ADAC_JUCEFLAGS $_ADAC_MANIFEST ${SOURCES[0]} ${TARGET.dir} "
                        "${_adac_option('--ir', ADAC_JUCE_IR, __env__)} "
                        "${_adac_option('--backend-choice', ADAC_JUCE_CHOICE, __env__)}",
                "adac juce    ${TARGET.dir}"),
        **_step("PLUGIN", "$ADAC $ADAC_FLAGS plugin $ADAC_PLUGINFLAGS $( --jobs $ADAC_JOBS $) "
                          "$_ADAC_MANIFEST ${SOURCES[0].dir} $TARGET",
                "adac plugin  $TARGET", "--juce-build $_ADAC_JUCE_BUILD --config $ADAC_JUCE_CONFIG"),
        **_step("REPORT", "$ADAC $ADAC_FLAGS report $ADAC_REPORTFLAGS $_ADAC_MANIFEST ${SOURCES[0]} ${SOURCES[1]} "
                          "${SOURCES[2]} $TARGET ${_adac_option('--bundles', ADAC_REPORT_BUNDLES, __env__)}",
                "adac report  $TARGET"),
        **_step("PACKAGE", "$ADAC $ADAC_FLAGS package $ADAC_PACKAGEFLAGS $_ADAC_MANIFEST ${TARGET.dir} $SOURCES",
                "adac package ${TARGET.dir}"),
        **_step("RELEASE", "$ADAC $ADAC_FLAGS release-manifest $ADAC_RELEASEFLAGS $TARGET $SOURCES",
                "adac release $TARGET"),
        **_step("INSTALL", "$ADAC $ADAC_FLAGS install $ADAC_INSTALLFLAGS $SOURCE $TARGET",
                "adac install ${SOURCE.filebase}", '${_adac_option("--prefix",ADAC_PREFIX,__env__)}'),
        **_step("HOTRELOAD", "$ADAC_PYTHON $ADAC_HOTRELOADFLAGS -c $ADAC_HOTRELOADCODE ${TARGET.dir} "
                             "$_ADAC_JUCE_BUILD $( $ADAC_JOBS $)", "adac hotreload $TARGET"),
    )
    # the steps' process environment: ENV plus the programs (a copy: ENV may be the caller's os.environ)
    env["ENV"] = step_environment(env)

    # posix: every path is one shell word, whatever its characters (Windows keeps its own ESCAPE)
    overrides = {} if sys.platform == "win32" else {"ESCAPE": _shell_escape}

    def builder(step, **kw):
        action = SCons.Action.Action(f"$ADAC_{step}COM", f"$ADAC_{step}COMSTR")
        return SCons.Builder.Builder(action=action, **kw, **overrides)

    builders = env["BUILDERS"]
    builders["AdacIR"] = builder("IR", suffix=".json", target_scanner=FactoryScanner)
    builders["AdacDSP"] = builder("DSP", suffix=".dsp")
    builders["AdacCert"] = builder("CERT", suffix=".cert.json")
    builders["AdacBackend"] = builder("BACKEND", suffix=".json")
    builders["AdacJuce"] = builder("JUCE", emitter=_juce_emitter, target_factory=env.fs.Dir)
    builders["AdacPlugin"] = builder("PLUGIN", suffix=".bundles.json")
    builders["AdacReport"] = builder("REPORT")
    builders["AdacPackage"] = builder("PACKAGE", emitter=_package_emitter)
    builders["AdacRelease"] = builder("RELEASE")
    builders["AdacInstall"] = builder("INSTALL")
    builders["AdacHotReload"] = builder("HOTRELOAD", emitter=_hotreload_emitter)
    env.AddMethod(AdacPlan)
    env.AddMethod(AdacPluginTargets)
    env.AddMethod(AdacProject)
    env.AddMethod(AdacCache)
    env.AddMethod(lock_file, "AdacJuceLock")


def exists(env):
    """The tool works where a Python to run adac is found."""
    return env.get("ADAC_PYTHON") or env.Detect(list(PROGRAMS["ADAC_PYTHON"][1]))


# ----------------------------------------------------------------------------- loading under SCons

def restore_package(name):
    """SCons registers a tool it finds on a toolpath in ``sys.modules`` under the tool's bare name, here
    ``adac``: that hides the adac package from imports that follow in the same SCons process. Put the
    package back (re-linking the submodules already imported), or make room for a later ``import adac``."""
    module = sys.modules.get(name)
    if name != "adac" or module is None or hasattr(module, "__path__"):
        return
    del sys.modules[name]
    loaded = sorted((n for n in sys.modules if n.startswith("adac.")), key=lambda n: n.count("."))
    if not loaded:
        return
    init = os.path.join(PACKAGE_DIR, "__init__.py")
    spec = importlib.util.spec_from_file_location("adac", init, submodule_search_locations=[PACKAGE_DIR])
    package = importlib.util.module_from_spec(spec)
    sys.modules["adac"] = package
    for sub in loaded:
        parent, _, child = sub.rpartition(".")
        if parent in sys.modules:
            setattr(sys.modules[parent], child, sys.modules[sub])
    try:
        spec.loader.exec_module(package)
    except Exception:  # noqa: BLE001 - never break the build over this; a later import adac retries
        del sys.modules["adac"]


restore_package(__name__)
