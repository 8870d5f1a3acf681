"""SCons tool for adac: one builder per artefact of a plugin.

    checkpoint + factory --AdacIR--> <Name>.json --AdacDSP--> <Name>.dsp --AdacJuce--> juce/ --AdacPlugin--> bundles
                                       '--AdacCert--> <Name>.cert.json (gates the JUCE project)

Each step's parameters enter its signature as a Value node built from only the
manifest fields that step reads, so editing a control rebuilds the .dsp and what
follows, not the IR. Heavy imports (torch, FLAMO) happen only inside the actions,
which run ``$ADAC_PYTHON -m adac``: reading the SConstruct stays fast.

Construction variables (override on the command line or in the SConstruct):
ADAC_PYTHON, ADAC_BUILD_ROOT, ADAC_FLAGS, and ADAC_<STEP>COM / ADAC_<STEP>COMSTR
for each step (IR, DSP, CERT, JUCE, PLUGIN).
"""
import json
import os

import SCons.Builder
import SCons.Script


def _step(name, command):
    return {
        f"ADAC_{name}COM": f"$ADAC_PYTHON -m adac --build-root $ADAC_BUILD_ROOT $ADAC_FLAGS {command}",
        f"ADAC_{name}COMSTR": f"adac {name.lower():6s} $TARGET",
    }


def _value(env, fields):
    """A Value node of the manifest fields one step reads (sorted JSON: a stable signature)."""
    return env.Value(json.dumps(fields, sort_keys=True))


def _juce_emitter(target, source, env):
    project = target[0]
    files = [project.File(name) for name in ("CMakeLists.txt", "FaustDsp.cpp", "FaustDsp.h", "PluginConfig.h")]
    return files, source


def _plugin_emitter(target, source, env):
    return target, source


def AdacPluginTargets(env, manifest_path, fields):
    """Declare every artefact of one plugin; returns a dict of step -> nodes."""
    name = fields["name"]
    folder = os.path.dirname(os.path.abspath(manifest_path))
    out = env.Dir(f"$ADAC_BUILD_ROOT/{name}")
    manifest = env.File(manifest_path)
    env = env.Clone(ADAC_MANIFEST=manifest.abspath)

    factory_file = fields["model"]["factory"].rpartition(":")[0]
    ir_sources = [env.File(os.path.join(folder, fields["model"]["checkpoint"]))]
    if factory_file.endswith(".py"):
        ir_sources.append(env.File(os.path.join(folder, factory_file)))
    ir_fields = {"fs": fields["fs"], "model": fields["model"], "name": name, "display_name": fields.get("display_name")}
    ir = env.AdacIR(out.File(f"{name}.json"), ir_sources + [_value(env, ir_fields)])

    dsp_fields = {"controls": fields.get("controls", {}), "fractional_order": fields.get("fractional_order")}
    dsp = env.AdacDSP(out.File(f"{name}.dsp"), [ir[0], _value(env, dsp_fields)])
    nodes = {"ir": ir, "dsp": dsp}
    # the compiler itself is an input: a new adac rebuilds what it generates
    compiler = env.Glob("#adac/*.py") + env.Glob("#schemas/*.json")
    env.Depends(ir, compiler)
    env.Depends(dsp, compiler)

    if env["ADAC_HAVE_CERT"]:
        cert_fields = {"controls": fields.get("controls", {}), "strict": fields.get("strict", True)}
        nodes["cert"] = env.AdacCert(out.File(f"{name}.cert.json"), [ir[0], _value(env, cert_fields)])
        env.Depends(nodes["cert"], compiler)

    if env["ADAC_HAVE_JUCE"]:
        juce_fields = {key: fields.get(key) for key in ("name", "display_name", "identity", "formats", "faust_options")}
        juce = env.AdacJuce(out.Dir("juce"), [dsp[0], _value(env, juce_fields)])
        if "cert" in nodes:
            env.Depends(juce, nodes["cert"])  # a refused certificate stops the plugin
        env.Depends(juce, compiler + env.Glob("#faust/arch/juce/*"))
        nodes["juce"] = juce
        nodes["plugin"] = env.AdacPlugin(out.File(f"{name}.bundles.json"), juce)
        env.Depends(nodes["plugin"], env.Glob("#juce_template/*"))
    return nodes


def generate(env):
    env.SetDefault(
        ADAC_PYTHON="python3",  # the PATH python with adac installed (scons itself may run under another)
        ADAC_BUILD_ROOT="#build",
        ADAC_FLAGS="",
        ADAC_HAVE_CERT=False,
        ADAC_HAVE_JUCE=False,
        **_step("IR", "ir $ADAC_MANIFEST $TARGET"),
        **_step("DSP", "dsp $ADAC_MANIFEST ${SOURCES[0]} $TARGET"),
        **_step("CERT", "cert $ADAC_MANIFEST ${SOURCES[0]} $TARGET"),
        **_step("JUCE", "juce $ADAC_MANIFEST ${SOURCES[0]} ${TARGETS[0].dir}"),
        **_step("PLUGIN", "plugin $ADAC_MANIFEST ${SOURCES[0].dir} $TARGET"),
    )
    action = lambda step: SCons.Script.Action(f"$ADAC_{step}COM", f"$ADAC_{step}COMSTR")
    env["BUILDERS"]["AdacIR"] = SCons.Builder.Builder(action=action("IR"), suffix=".json")
    env["BUILDERS"]["AdacDSP"] = SCons.Builder.Builder(action=action("DSP"), suffix=".dsp")
    env["BUILDERS"]["AdacCert"] = SCons.Builder.Builder(action=action("CERT"), suffix=".cert.json")
    env["BUILDERS"]["AdacJuce"] = SCons.Builder.Builder(action=action("JUCE"), emitter=_juce_emitter,
                                                        target_factory=env.fs.Dir)
    env["BUILDERS"]["AdacPlugin"] = SCons.Builder.Builder(action=action("PLUGIN"), emitter=_plugin_emitter)
    env.AddMethod(AdacPluginTargets)


def exists(env):
    return True
