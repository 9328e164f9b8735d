// The gru-web demo page: a forward panel (GPU forward vs the CPU reference, with a chart) and
// a streaming panel (a session fed every few ms, plotted as outputs arrive). With ?parity=1
// it runs the parity suite (parity.js) first and publishes window.gruParity.

import init, * as gru from './pkg/gru_web.js';
import { drawLines, ScrollingChart } from './chart.js';
import { runParity, rng, comparer } from './parity.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const PARITY = params.get('parity') === '1';
const GOLDEN = params.get('golden') || '/golden';
// ?limits=default: the device gets WebGPU's default limits instead of the adapter's (the
// browser test runs the parity suite so, to show every kernel fits them).
const LIMITS = params.get('limits');

let compare = null; // set after init (gru.compare, or the JS rule when the package lacks it)

// ---- small helpers -------------------------------------------------------------------------

function errText(e) {
  return e instanceof Error ? e.message : String(e);
}

function ms(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  return v < 10 ? `${v.toFixed(2)} ms` : `${v.toFixed(1)} ms`;
}

function num(v) {
  if (v === null || v === undefined) return '–';
  if (Number.isNaN(v)) return 'NaN';
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a < 1e-3 || a >= 1e4 ? v.toExponential(2) : v.toPrecision(4);
}

/** More digits, for a got/expected pair that agree to 4 of them. */
function full(v) {
  if (v === null || v === undefined) return '–';
  if (!Number.isFinite(v)) return String(v);
  return v === 0 ? '0' : v.toPrecision(7);
}

function shape(s) {
  return `[${s.join(', ')}]`;
}

function badge(ok) {
  return `<span class="badge ${ok ? 'ok' : 'fail'}">${ok ? 'OK' : 'FAIL'}</span>`;
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function setStatus(el, text, error = false) {
  el.textContent = text;
  el.classList.toggle('error', error);
}

function intField(id, lo, hi) {
  const v = Number($(id).value);
  if (!Number.isInteger(v) || v < lo || v > hi) throw new Error(`${$(id).closest('label').textContent.trim()}: a whole number in ${lo}..${hi}`);
  return v;
}

const sleep = (t) => new Promise((r) => setTimeout(r, t));

/** Joins compare() results: ok when all are; the largest difference. */
function joinCmp(parts) {
  const worst = parts.reduce((w, p) => (w === null || (!p[1].ok && w[1].ok) || (p[1].ok === w[1].ok && p[1].maxAbsErr > w[1].maxAbsErr) ? p : w), null);
  return { ...worst[1], ok: parts.every((p) => p[1].ok), which: worst[0] };
}

function cmpHtml(c) {
  const where = c.which ? ` in ${c.which}` : '';
  const worst = c.worstIndex >= 0 ? `; worst element #${c.worstIndex}${where}: ${full(c.got)} vs ${full(c.expected)}` : '';
  return `${badge(c.ok)} max |GPU − CPU| = ${num(c.maxAbsErr)}${worst} <span class="hint">(tolerance ${escapeHtml(c.tolerance)})</span>`;
}

// ---- the model -------------------------------------------------------------------------------

const state = {
  model: null, // GruModel
  key: null,
  info: null,
  modelFile: null, // File
  npy: null, // {data, shape, name}
};

function modelSource() {
  return document.querySelector('input[name=model-src]:checked').value;
}

function inputSource() {
  return document.querySelector('input[name=input-src]:checked').value;
}

function seededOpts() {
  return {
    inputSize: intField('m-I', 1, 256),
    hiddenSize: intField('m-H', 1, 512),
    numLayers: intField('m-L', 1, 4),
    bidirectional: $('m-bidir').checked,
    resetAfter: $('m-ra').checked,
    seed: intField('m-seed', 0, 2 ** 31),
  };
}

/** The model the panels use, rebuilt only when its settings changed. */
async function currentModel() {
  let key, make;
  if (modelSource() === 'file') {
    const f = state.modelFile;
    if (!f) throw new Error('choose a model file first (or pick "Seeded")');
    key = `file:${f.name}:${f.size}:${f.lastModified}`;
    make = async () => gru.GruModel.load(new Uint8Array(await f.arrayBuffer()), { name: f.name });
  } else {
    const o = seededOpts();
    key = 'seeded:' + JSON.stringify(o);
    make = () => gru.GruModel.seeded(o);
  }
  if (state.key === key && state.model) return state.model;
  // One build per settings: a Run and a Start pressed together share it.
  if (state.building && state.building.key === key) return state.building.promise;
  const promise = (async () => {
    if (stream.running || stream.session) await stopStream().catch(() => {});
    const model = await make();
    if (state.model) state.model.free();
    state.model = model;
    state.key = key;
    state.info = model.info();
    return model;
  })();
  state.building = { key, promise };
  try {
    return await promise;
  } finally {
    if (state.building && state.building.promise === promise) state.building = null;
  }
}

function describeModel(info, name) {
  const dirs = info.numDirections === 2 ? 'bidirectional' : 'forward';
  const conv = info.resetAfter ? 'reset after' : 'reset before';
  const where = info.device === 'gpu' ? 'on the GPU' : 'on the CPU reference';
  const fb = info.fallback ? ` — ${info.fallback}` : '';
  return `${name ? name + ': ' : ''}${info.format}, I=${info.inputSize}, H=${info.hiddenSize}, ${info.numLayers} layer${info.numLayers > 1 ? 's' : ''}, ${dirs}, ${conv}, ${info.dtype}, ${where}; ${info.style} shapes, ${info.layout} layout by default${fb}`;
}

// ---- inputs ----------------------------------------------------------------------------------

/** The generated signal: per input a sine of its own period, per batch entry a phase, plus
 *  noise; `t0` is the first step (streaming continues where it left off). */
function signal(r, t, b, i) {
  const period = 12 + 7 * i;
  return Math.sin((2 * Math.PI * t) / period + 0.7 * b) * (1 - 0.15 * (i % 3)) + 0.15 * r.normal();
}

/** The layout a Run uses: the one picked, else the model's default. */
function runLayout(info) {
  return $('in-layout').value || info.layout;
}

function generatedInput(info, layout, T, B, seed) {
  const I = info.inputSize;
  const r = rng(0x5eed + seed);
  const x = new Float32Array(T * B * I);
  const batchMajor = layout === 'batch';
  for (let t = 0; t < T; t++)
    for (let b = 0; b < B; b++)
      for (let i = 0; i < I; i++) {
        const at = batchMajor ? (b * T + t) * I + i : (t * B + b) * I + i;
        x[at] = signal(r, t, b, i);
      }
  return x;
}

/** T and B of a .npy input, from its shape and the model's layout. */
function npyDims(npy, info, layout) {
  const s = npy.shape;
  const I = info.inputSize;
  if (s[s.length - 1] !== I) throw new Error(`${npy.name}: shape ${shape(s)}, but the model takes ${I} inputs in the last axis`);
  if (s.length === 2) return { T: s[0], B: 1 };
  if (s.length === 3) return layout === 'batch' ? { T: s[1], B: s[0] } : { T: s[0], B: s[1] };
  throw new Error(`${npy.name}: shape ${shape(s)}; expected [T, B, I], [B, T, I] or [T, I]`);
}

/** Index of y(t, b, d, u) in a forward's output, for the model's style and layout. */
function yIndex(info, layout, T, B, t, b, d, u) {
  const D = info.numDirections, H = info.hiddenSize;
  const batchMajor = layout === 'batch';
  if (info.style === 'onnx') return batchMajor ? ((b * T + t) * D + d) * H + u : ((t * D + d) * B + b) * H + u;
  // pytorch and keras: [.., .., D·H]
  return (batchMajor ? b * T + t : t * B + b) * D * H + d * H + u;
}

// ---- panel 1: forward ----------------------------------------------------------------------------

async function runForward() {
  const status = $('run-status');
  $('run').disabled = true;
  setStatus(status, 'running…');
  try {
    const model = await currentModel();
    const info = state.info;
    $('r-model').textContent = describeModel(info, modelSource() === 'file' ? state.modelFile.name : '');
    const layout = runLayout(info);
    let x, T, B;
    if (inputSource() === 'npy') {
      if (!state.npy) throw new Error('choose a .npy input first (or pick "Generated")');
      ({ T, B } = npyDims(state.npy, info, layout));
      x = state.npy.data;
    } else {
      T = intField('in-T', 1, 4096);
      B = intField('in-B', 1, 256);
      x = generatedInput(info, layout, T, B, Number($('m-seed').value) || 0);
    }
    const opts = { T, B, layout };
    const gpuOut = await model.forward(x, opts);
    const cpuOut = model.forwardCpu(x, opts);
    const cmp = joinCmp([['y', compare(gpuOut.y, cpuOut.y)], ['hN', compare(gpuOut.hN, cpuOut.hN)]]);
    $('r-shape').textContent = `x ${layout === 'batch' ? `[B=${B}, T=${T}, I=${info.inputSize}]` : `[T=${T}, B=${B}, I=${info.inputSize}]`} → y ${shape(gpuOut.yShape)}, final state ${shape(gpuOut.hNShape)}`;
    $('r-gpu').textContent = info.device === 'gpu' ? ms(gpuOut.ms) : `${ms(gpuOut.ms)} (no GPU: this ran on the CPU reference)`;
    $('r-cpu').textContent = `${ms(cpuOut.ms)} (f64 reference in wasm)`;
    $('r-diff').innerHTML = cmpHtml(cmp);
    const units = Math.min(4, info.hiddenSize);
    const series = [];
    for (let u = 0; u < units; u++) {
      const s = new Array(T);
      for (let t = 0; t < T; t++) s[t] = gpuOut.y[yIndex(info, layout, T, B, t, 0, 0, u)];
      series.push(s);
    }
    drawLines($('forward-chart'), series, { names: series.map((_, u) => `unit ${u}`), xLabel: 'step t (batch 0)' });
    setStatus(status, `done: ${T} steps × ${B} sequences`);
    return { ok: cmp.ok, maxAbsErr: cmp.maxAbsErr, yShape: gpuOut.yShape, gpuMs: gpuOut.ms, cpuMs: cpuOut.ms, device: info.device };
  } catch (e) {
    setStatus(status, errText(e), true);
    throw e;
  } finally {
    $('run').disabled = false;
  }
}

// ---- panel 2: streaming -------------------------------------------------------------------------

const stream = {
  running: false,
  session: null,
  id: null,
  model: null,
  xs: [],
  ys: [],
  steps: 0,
  latencies: [],
  inflight: null,
  timer: null,
  rng: null,
};
let streamChart = null;

async function startStream() {
  if (stream.running) return;
  const status = $('s-status');
  $('s-start').disabled = true;
  try {
    const model = await currentModel();
    const info = state.info;
    if (info.numDirections !== 1) throw new Error('streaming needs a unidirectional model (this one is bidirectional)');
    if (info.device !== 'gpu') throw new Error(`streaming needs the GPU: ${info.fallback || 'the model is on the CPU reference'}`);
    const steps = intField('s-steps', 1, 64);
    const interval = intField('s-interval', 0, 2000);
    $('s-interval-text').textContent = interval;
    const session = await model.session(1);
    const id = await session.open();
    Object.assign(stream, { running: true, session, id, model, xs: [], ys: [], steps: 0, latencies: [], rng: rng(0x57ea), stepsPerFeed: steps, interval });
    const units = Math.min(4, info.hiddenSize);
    streamChart.reset(units, Array.from({ length: units }, (_, u) => `unit ${u}`));
    $('s-check').textContent = '–';
    $('s-stop').disabled = false;
    setStatus(status, 'streaming…');
    tick();
  } catch (e) {
    $('s-start').disabled = false;
    setStatus(status, errText(e), true);
    throw e;
  }
}

function tick() {
  if (!stream.running) return;
  const I = state.info.inputSize, H = state.info.hiddenSize;
  const k = stream.stepsPerFeed;
  const x = new Float32Array(k * I);
  for (let s = 0; s < k; s++) for (let i = 0; i < I; i++) x[s * I + i] = signal(stream.rng, stream.steps + s, 0, i);
  const t0 = performance.now();
  stream.inflight = stream.session
    .feed([stream.id], x, k)
    .then((y) => {
      const lat = performance.now() - t0;
      stream.latencies.push(lat);
      stream.xs.push(x);
      stream.ys.push(y);
      stream.steps += k;
      const units = Math.min(4, H);
      for (let s = 0; s < k; s++) streamChart.push(Array.from({ length: units }, (_, u) => y[s * H + u]));
      const l = stream.latencies;
      const mean = l.reduce((a, b) => a + b, 0) / l.length;
      $('s-latency').textContent = `last ${ms(lat)}, mean ${ms(mean)}, max ${ms(Math.max(...l))} (${k} steps per feed)`;
      $('s-count').textContent = `${stream.steps} steps in ${l.length} feeds`;
      if (stream.running) stream.timer = setTimeout(tick, Math.max(0, stream.interval - lat));
    })
    .catch((e) => {
      stream.running = false;
      stream.error = e;
      setStatus($('s-status'), errText(e), true);
    });
}

/** Stops the stream and checks all of it against forwardCpu; resolves to the comparison. */
async function stopStream() {
  if (!stream.session) return null;
  stream.running = false;
  clearTimeout(stream.timer);
  $('s-stop').disabled = true;
  const status = $('s-status');
  try {
    await stream.inflight;
    setStatus(status, 'checking the stream against the CPU reference…');
    const { session, id, model } = stream;
    const finalState = await session.state(id);
    const T = stream.steps;
    if (T === 0) {
      setStatus(status, 'stopped before the first feed finished');
      return null;
    }
    const x = concat(stream.xs);
    const y = concat(stream.ys);
    const cpu = model.forwardCpu(x, { T, B: 1 });
    const cmp = joinCmp([['outputs', compare(y, cpu.y)], ['state()', compare(finalState, cpu.hN)]]);
    $('s-check').innerHTML = `${cmpHtml(cmp)} <span class="hint">(${T} steps; CPU reference ${ms(cpu.ms)})</span>`;
    setStatus(status, 'stopped');
    const l = stream.latencies;
    return { ok: cmp.ok, maxAbsErr: cmp.maxAbsErr, steps: T, feeds: l.length, meanLatencyMs: l.reduce((a, b) => a + b, 0) / l.length };
  } catch (e) {
    setStatus(status, errText(e), true);
    throw e;
  } finally {
    try {
      stream.session.close(stream.id);
    } catch { /* already closed */ }
    stream.session.free();
    stream.session = null;
    $('s-start').disabled = false;
  }
}

function concat(arrays) {
  const out = new Float32Array(arrays.reduce((a, c) => a + c.length, 0));
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}

// ---- files -------------------------------------------------------------------------------------------

async function takeNpy(file) {
  try {
    const parsed = gru.parseNpy(new Uint8Array(await file.arrayBuffer()));
    state.npy = { ...parsed, name: file.name };
    document.querySelector('input[name=input-src][value=npy]').checked = true;
    setStatus($('run-status'), `input ${file.name}: ${shape(parsed.shape)}`);
  } catch (e) {
    state.npy = null;
    setStatus($('run-status'), `${file.name}: ${errText(e)}`, true);
  }
}

function takeModelFile(file) {
  state.modelFile = file;
  document.querySelector('input[name=model-src][value=file]').checked = true;
  setStatus($('run-status'), `model file ${file.name} (${file.size} bytes): press Run`);
}

function wireFiles() {
  $('model-file').addEventListener('change', (e) => e.target.files[0] && takeModelFile(e.target.files[0]));
  $('npy-file').addEventListener('change', (e) => e.target.files[0] && takeNpy(e.target.files[0]));
  const drop = $('drop');
  for (const ev of ['dragenter', 'dragover']) drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add('over'); });
  for (const ev of ['dragleave', 'drop']) drop.addEventListener(ev, () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    for (const f of e.dataTransfer.files) {
      if (/\.npy$/i.test(f.name)) takeNpy(f);
      else if (/\.(safetensors|npz|onnx)$/i.test(f.name)) takeModelFile(f);
      else setStatus($('run-status'), `${f.name}: not a .npy input or a .safetensors / .npz / .onnx model`, true);
    }
  });
}

// ---- parity mode ------------------------------------------------------------------------------------

function parityRow(c, i) {
  const tr = document.createElement('tr');
  if (!c.ok) tr.className = 'fail';
  const worst = c.worstIndex !== null && c.worstIndex !== undefined && c.worstIndex >= 0 ? `#${c.worstIndex}: ${full(c.got)} / ${full(c.expected)}` : '';
  const msg = c.message ? `<div class="hint">${escapeHtml(c.message)}</div>` : '';
  tr.innerHTML = `<td>${i + 1}</td><td>${escapeHtml(c.name)}${msg}</td><td>${escapeHtml(c.shape || '')}</td><td class="n">${c.maxAbsErr === null || c.maxAbsErr === undefined ? '' : num(c.maxAbsErr)}</td><td class="n">${worst}</td><td class="n">${ms(c.ms)}</td><td>${badge(c.ok)}</td>`;
  $('parity-table').tBodies[0].appendChild(tr);
}

async function parityMode() {
  $('parity-panel').hidden = false;
  const summary = $('parity-summary');
  const t0 = performance.now();
  try {
    const result = await runParity(gru, { goldenBase: GOLDEN, onCase: parityRow });
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    summary.innerHTML = `${badge(result.failures === 0)} ${result.cases.length} cases, ${result.failures} failures, in ${secs} s; compare: ${escapeHtml(result.compareImpl)}`;
    window.gruParity = result;
  } catch (e) {
    summary.textContent = `parity run failed: ${errText(e)}`;
    summary.classList.add('error');
    window.gruParityError = errText(e) || 'parity run failed';
  }
  // One demo run of each panel, so that the page shows what it does.
  const demo = {};
  try {
    demo.forward = await runForward();
  } catch (e) {
    demo.forwardError = errText(e);
  }
  try {
    await startStream();
    await sleep(1500);
    demo.stream = await stopStream();
  } catch (e) {
    demo.streamError = errText(e);
  }
  window.gruDemo = demo;
  window.gruDemoDone = true;
}

// ---- start --------------------------------------------------------------------------------------------

async function browserAdapterLine() {
  // What the browser itself says of its adapter (wgpu's name is often empty on the web).
  try {
    const a = navigator.gpu && (await navigator.gpu.requestAdapter());
    if (!a || !a.info) return '';
    return [a.info.vendor, a.info.architecture, a.info.device, a.info.description].filter(Boolean).join(' ');
  } catch {
    return '';
  }
}

async function main() {
  streamChart = new ScrollingChart($('stream-chart'), { series: 4, window: 240 });
  drawLines($('forward-chart'), [], { message: 'press Run' });
  const line = $('adapter');
  try {
    await init();
  } catch (e) {
    line.className = 'adapter error';
    line.textContent = `Could not load the wasm package (./pkg/gru_web.js): ${errText(e)}. Build it with scripts/build-web.sh.`;
    if (PARITY) window.gruParityError = `wasm package failed to load: ${errText(e)}`;
    return;
  }
  compare = comparer(gru).compare;
  let info = null;
  try {
    if (LIMITS) gru.setDeviceLimits(LIMITS);
    info = await gru.adapterInfo();
  } catch (e) {
    line.className = 'adapter error';
    line.textContent = `WebGPU error: ${errText(e)}; running the CPU reference`;
  }
  if (info) {
    const browser = await browserAdapterLine();
    const desc = (info.description || '').trim();
    line.className = 'adapter';
    line.textContent = `WebGPU adapter: ${browser ? browser + ' — ' : ''}${desc}; shader-f16 ${info.shaderF16 ? 'yes' : 'no'}, subgroups ${info.subgroups ? 'yes' : 'no'}${LIMITS === 'default' ? '; WebGPU default limits' : ''}`;
    window.gruBrowserAdapter = browser;
  } else if (!line.classList.contains('error')) {
    line.className = 'adapter none';
    line.textContent = navigator.gpu
      ? 'No WebGPU adapter: running the CPU reference (both columns below are the CPU).'
      : 'No WebGPU in this browser: running the CPU reference (both columns below are the CPU).';
  }

  wireFiles();
  $('run').addEventListener('click', () => runForward().catch(() => {}));
  $('s-start').addEventListener('click', () => startStream().catch(() => {}));
  $('s-stop').addEventListener('click', () => stopStream().catch(() => {}));
  $('s-interval').addEventListener('change', () => ($('s-interval-text').textContent = $('s-interval').value));
  window.addEventListener('resize', () => streamChart.draw());

  if (PARITY) await parityMode();
}

main().catch((e) => {
  console.error(e);
  if (PARITY && !window.gruParity) window.gruParityError = errText(e) || 'page failed';
});
