// adac report: the audition panel. The compiled .dsp (faust -lang wasm) runs in an AudioWorklet; no network:
// the WebAssembly module and the dry sounds come from audition-data.js (base64), the worklet's code from a Blob.
// window.adacRenderImpulse(n) renders the DSP's impulse responses offline (the browser test calls it).
"use strict";

// ---------------------------------------------------------------------------------- the worklet processor
// Runs in the AudioWorkletGlobalScope: the source of this function becomes the worklet module (a Blob URL).
function adacProcessorModule() {
  const FRAMES = 128;  // the Web Audio render quantum

  function mathImports() {
    // every libm import FAUST's wasm backend may ask for (float and double names)
    const m = {};
    const unary = ["acos", "asin", "atan", "ceil", "cos", "exp", "floor", "log", "log10", "sin", "sqrt", "tan",
                   "acosh", "asinh", "atanh", "cosh", "sinh", "tanh"];
    for (const name of unary) { m["_" + name + "f"] = Math[name]; m["_" + name] = Math[name]; }
    const binary = {atan2: Math.atan2, pow: Math.pow, fmod: (x, y) => x % y,
                    remainder: (x, y) => x - Math.round(x / y) * y,
                    copysign: (x, y) => (Math.sign(x) === Math.sign(y) ? x : -x)};
    for (const [name, fn] of Object.entries(binary)) { m["_" + name + "f"] = fn; m["_" + name] = fn; }
    Object.assign(m, {_abs: Math.abs, _max_f: Math.max, _min_f: Math.min, _max_: Math.max, _min_: Math.min,
                      _roundf: Math.round, _round: Math.round, _isnanf: Number.isNaN, _isnan: Number.isNaN,
                      _isinff: (x) => !isFinite(x), _isinf: (x) => !isFinite(x)});
    return m;
  }

  class AdacProcessor extends AudioWorkletProcessor {
    constructor(options) {
      super();
      const o = options.processorOptions;  // {module, size, inputs, outputs, params: {address: index}, values}
      const instance = new WebAssembly.Instance(o.module, {env: mathImports()});
      this.dsp = instance.exports;
      this.nIn = o.inputs;
      this.nOut = o.outputs;
      this.params = o.params;
      // memory: the DSP's state at 0 (o.size bytes), then the channel pointer tables and the buffers
      const base = Math.ceil(o.size / 16) * 16;
      const pointers = base, buffers = base + 4 * (this.nIn + this.nOut);
      const end = buffers + 4 * FRAMES * (this.nIn + this.nOut);
      const memory = this.dsp.memory;
      if (end > memory.buffer.byteLength) memory.grow(Math.ceil((end - memory.buffer.byteLength) / 65536));
      const table = new Int32Array(memory.buffer, pointers, this.nIn + this.nOut);
      this.channels = [];
      for (let c = 0; c < this.nIn + this.nOut; ++c) {
        table[c] = buffers + 4 * FRAMES * c;
        this.channels.push(new Float32Array(memory.buffer, table[c], FRAMES));
      }
      this.insPtr = pointers;
      this.outsPtr = pointers + 4 * this.nIn;
      this.dsp.init(0, sampleRate);
      for (const [address, value] of Object.entries(o.values || {})) this.set(address, value);
      this.port.onmessage = (event) => this.set(event.data.address, event.data.value);
    }

    set(address, value) {
      if (address in this.params) this.dsp.setParamValue(0, this.params[address], value);
    }

    process(inputs, outputs) {
      const input = inputs[0] || [], output = outputs[0];
      for (let c = 0; c < this.nIn; ++c) {
        if (input[c]) this.channels[c].set(input[c]); else this.channels[c].fill(0);
      }
      this.dsp.compute(0, FRAMES, this.insPtr, this.outsPtr);
      for (let c = 0; c < Math.min(this.nOut, output.length); ++c) output[c].set(this.channels[this.nIn + c]);
      return true;
    }
  }

  registerProcessor("adac-dsp", AdacProcessor);
}

// ------------------------------------------------------------------------------------------- the page side
const ADAC = window.ADAC_AUDITION;

function decodeBase64(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; ++i) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

const modulePromise = WebAssembly.compile(decodeBase64(ADAC.wasm));
const workletURL = URL.createObjectURL(new Blob(["(" + adacProcessorModule.toString() + ")();"],
                                                {type: "application/javascript"}));

function soundBuffer(context, sound) {
  // 16-bit PCM, mono, at the model's rate: the same signal on every DSP input
  const pcm = new Int16Array(decodeBase64(sound.pcm16).buffer);
  const buffer = context.createBuffer(ADAC.inputs, pcm.length, ADAC.fs);
  const data = Float32Array.from(pcm, (v) => v / 32768);
  for (let c = 0; c < ADAC.inputs; ++c) buffer.copyToChannel(data, c);
  return buffer;
}

async function dspNode(context, values) {
  await context.audioWorklet.addModule(workletURL);
  return new AudioWorkletNode(context, "adac-dsp", {
    numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [ADAC.outputs],
    channelCount: ADAC.inputs, channelCountMode: "explicit", channelInterpretation: "discrete",
    processorOptions: {module: await modulePromise, size: ADAC.size, inputs: ADAC.inputs, outputs: ADAC.outputs,
                       params: Object.fromEntries(ADAC.controls.map((c) => [c.address, c.index])), values},
  });
}

// The DSP's impulse responses at the controls' defaults, rendered offline: result[in][out] is an array of n
// samples (float32 values) for an impulse on input `in`.
window.adacRenderImpulse = async function (n) {
  const result = [];
  for (let i = 0; i < ADAC.inputs; ++i) {
    const context = new OfflineAudioContext(ADAC.outputs, n, ADAC.fs);
    const impulse = context.createBuffer(ADAC.inputs, n, ADAC.fs);
    impulse.getChannelData(i)[0] = 1;
    const source = new AudioBufferSourceNode(context, {buffer: impulse});
    const node = await dspNode(context, {});
    source.connect(node).connect(context.destination);
    source.start(0);
    const rendered = await context.startRendering();
    result.push(Array.from({length: ADAC.outputs}, (_, o) => Array.from(rendered.getChannelData(o))));
  }
  return result;
};

// ------------------------------------------------------------------------------------------ the live panel
const live = {context: null, node: null, wet: null, dry: null, source: null};

function controlValues() {
  const values = {};
  for (const c of ADAC.controls) values[c.address] = Number(document.getElementById("ctl-" + c.name).value);
  return values;
}

async function ensureContext() {
  if (live.context) return live.context;
  const context = new AudioContext({sampleRate: ADAC.fs});
  live.node = await dspNode(context, controlValues());
  live.wet = new GainNode(context);
  live.dry = new GainNode(context);
  live.node.connect(live.wet).connect(context.destination);
  live.dry.connect(context.destination);
  live.context = context;
  setListen(document.querySelector("input[name=ab]:checked").value);
  return context;
}

function setListen(which) {
  if (!live.context) return;
  const t = live.context.currentTime;
  live.wet.gain.setTargetAtTime(which === "wet" ? 1 : 0, t, 0.01);
  live.dry.gain.setTargetAtTime(which === "dry" ? 1 : 0, t, 0.01);
}

async function play(name) {
  const context = await ensureContext();
  await context.resume();
  if (live.source) live.source.stop();
  const sound = ADAC.sounds.find((s) => s.name === name);
  live.source = new AudioBufferSourceNode(context, {buffer: soundBuffer(context, sound)});
  live.source.connect(live.node);
  live.source.connect(live.dry);
  live.source.start();
  document.getElementById("audition-status").textContent = "playing " + sound.label;
}

function buildPanel() {
  const controls = document.getElementById("audition-controls");
  for (const c of ADAC.controls) {
    const row = document.createElement("label");
    row.className = "control";
    const slider = Object.assign(document.createElement("input"),
                                 {type: "range", id: "ctl-" + c.name, min: c.min, max: c.max, step: c.step, value: c.init});
    const shown = document.createElement("output");
    shown.textContent = c.init + " " + c.unit;
    slider.addEventListener("input", () => {
      shown.textContent = slider.value + " " + c.unit;
      if (live.node) live.node.port.postMessage({address: c.address, value: Number(slider.value)});
    });
    row.append(c.name + " ", slider, shown);
    controls.append(row);
  }
  const sounds = document.getElementById("audition-sounds");
  for (const s of ADAC.sounds) {
    const button = Object.assign(document.createElement("button"), {type: "button", textContent: "play " + s.label});
    button.addEventListener("click", () => play(s.name));
    sounds.append(button);
  }
  for (const radio of document.querySelectorAll("input[name=ab]")) {
    radio.addEventListener("change", () => setListen(radio.value));
  }
  modulePromise.then(() => { document.getElementById("audition-status").textContent = "ready"; });
}

buildPanel();
