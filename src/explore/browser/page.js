/**
 * The live explorer's page (plain browser JavaScript, bundled by scripts/build-explorer.mjs): the
 * gallery, the controls and the result views. The computation runs in worker.js (the engine);
 * this file only asks for brackets and draws what comes back. Every control is a native button,
 * select, range or text input, so all of it works from the keyboard.
 *
 * Test contract: window.lieBracket.lastResult = { x, y, step, bracketNorm, logitEffect } (outputs ×
 * probes, the probes in the order of window.lieBracket.probes) once a result is shown.
 */
'use strict';

const $ = (id) => document.getElementById(id);
const sci = (v) => (Number.isFinite(v) ? v.toExponential(3) : String(v));

const api = {
  /** The probe batch: test indices, in the order of logitEffect's columns. */
  probes: [],
  /** The result on show: { x, y, step, bracketNorm, logitEffect, … }. */
  lastResult: null,
  manifest: null,
  /** Results per "x,y@step#probes". */
  cache: new Map(),
  /** True while the worker computes. */
  busy: false,
  ready: false,
  kernels: null,
};
window.lieBracket = api;

const state = {
  x: null,
  y: null,
  stepIndex: 0,
  predictions: new Map(),
  pendingPredict: new Set(),
  inFlight: null,
  queued: null,
  nextId: 1,
};

const worker = new Worker('worker.js');
const key = (x, y, step, probes) => `${x},${y}@${step}#${probes.join(',')}`;
const currentStep = () => api.manifest.steps[state.stepIndex];

function setStatus(text, error = false) {
  const s = $('status');
  s.textContent = text;
  s.classList.toggle('error', error);
}

function setProgress(fraction) {
  const p = $('progress');
  if (fraction === null) p.hidden = true;
  else {
    p.hidden = false;
    p.value = fraction;
  }
}

worker.onmessage = (e) => {
  const m = e.data;
  if (m.type === 'ready') {
    api.ready = true;
    api.kernels = m.kernels;
    const k = m.kernels === 'none' ? 'plain-JS kernels (no WebAssembly SIMD or no cross-origin isolation here)' : `WebAssembly ${m.kernels} kernels`;
    $('run-info').textContent += ` · engine: ${k}`;
    setStatus('ready: pick two examples');
    requestPredictions();
  } else if (m.type === 'progress') {
    if (state.inFlight && m.id === state.inFlight.id) {
      setStatus(`${m.stage}…`);
      setProgress(m.fraction);
    }
  } else if (m.type === 'result') {
    const r = m.result;
    api.cache.set(key(r.x, r.y, r.step, r.probes), r);
    const wanted = state.inFlight;
    state.inFlight = null;
    api.busy = false;
    setProgress(null);
    if (wanted && isCurrent(r)) show(r);
    sendQueued();
  } else if (m.type === 'predictions') {
    state.pendingPredict.delete(m.step);
    state.predictions.set(m.step, m.logits);
    if (m.step === currentStep()) drawPredictions();
  } else if (m.type === 'error') {
    console.warn(`explorer worker: ${m.message}`);
    setStatus(`error: ${m.message}`, true);
    if (m.id !== null) {
      state.inFlight = null;
      api.busy = false;
      setProgress(null);
      sendQueued();
    }
  }
};
worker.onerror = (e) => setStatus(`the worker failed: ${e.message}`, true);

function isCurrent(r) {
  return r.x === state.x && r.y === state.y && r.step === currentStep() && r.probes.join(',') === api.probes.join(',');
}

function requestPredictions() {
  const step = currentStep();
  if (state.predictions.has(step)) drawPredictions();
  else if (!state.pendingPredict.has(step)) {
    state.pendingPredict.add(step);
    worker.postMessage({ type: 'predict', step });
  }
}

/** Ask for the current pair at the current checkpoint (from the cache, or the worker; one request in flight, the latest queued). */
function compute() {
  if (state.x === null || state.y === null || !api.ready) return;
  const step = currentStep();
  const probes = [...api.probes];
  const cached = api.cache.get(key(state.x, state.y, step, probes));
  if (cached) {
    show(cached, true);
    return;
  }
  // B(y, x) = −B(x, y): the swapped pair's result, without computing
  const mirror = api.cache.get(key(state.y, state.x, step, probes));
  if (mirror) {
    const r = swapped(mirror);
    api.cache.set(key(r.x, r.y, r.step, r.probes), r);
    show(r, true);
    return;
  }
  const req = { type: 'bracket', id: state.nextId++, x: state.x, y: state.y, step, probes };
  if (state.inFlight) {
    state.queued = req;
    setStatus(`queued: pair ${req.x},${req.y} at step ${step}`);
  } else send(req);
}

function send(req) {
  state.inFlight = req;
  api.busy = true;
  setStatus(`computing pair ${req.x},${req.y} at step ${req.step}…`);
  setProgress(0);
  worker.postMessage(req);
}

function sendQueued() {
  const q = state.queued;
  state.queued = null;
  if (!q) return;
  if (q.x === state.x && q.y === state.y && q.step === currentStep() && q.probes.join(',') === api.probes.join(',')) {
    if (api.cache.has(key(q.x, q.y, q.step, q.probes))) show(api.cache.get(key(q.x, q.y, q.step, q.probes)), true);
    else send(q);
  }
}

function swapped(r) {
  return {
    ...r,
    x: r.y,
    y: r.x,
    lossX: r.lossY,
    lossY: r.lossX,
    gradNormX: r.gradNormY,
    gradNormY: r.gradNormX,
    tensors: Object.fromEntries(
      Object.entries(r.tensors).map(([k, t]) => [
        k,
        { ...t, gradNormX: t.gradNormY, gradNormY: t.gradNormX, gradRmsX: t.gradRmsY, gradRmsY: t.gradRmsX },
      ]),
    ),
    logitEffect: r.logitEffect.map((row) => row.map((v) => (v === 0 ? 0 : -v))),
    fromSwap: true,
  };
}

// ---------------------------------------------------------------------------------------------
// the views

function show(r, fromCache = false) {
  api.lastResult = { ...r, x: r.x, y: r.y, step: r.step, bracketNorm: r.bracketNorm, logitEffect: r.logitEffect };
  $('bracket-norm').textContent = sci(r.bracketNorm);
  $('grad-norms').textContent = `${sci(r.gradNormX)}, ${sci(r.gradNormY)}`;
  $('grad-cos').textContent = r.gradCosine.toFixed(4);
  $('bracket-rel').textContent = sci(r.bracketNorm / (r.gradNormX * r.gradNormY));
  $('losses').textContent = `${r.lossX.toFixed(4)}, ${r.lossY.toFixed(4)}`;
  const how = r.fromSwap ? 'by antisymmetry from B(y, x)' : fromCache ? `${r.ms.toFixed(0)} ms (cached)` : `${r.ms.toFixed(0)} ms`;
  $('timing').textContent =
    `pair (${r.x}, ${r.y}) at step ${r.step}, ${r.probes.length} probes: ${how}; ${r.kernels === 'none' ? 'JS' : r.kernels} kernels`;
  drawHeatmap(r);
  drawSensitive(r);
  drawTensors(r);
  setStatus(`pair ${r.x},${r.y} at step ${r.step}: done`);
}

function color(v, max) {
  const t = max > 0 ? Math.max(-1, Math.min(1, v / max)) : 0;
  const a = Math.round(255 * (1 - Math.abs(t)));
  return t >= 0 ? `rgb(255, ${a}, ${a})` : `rgb(${a}, ${a}, 255)`;
}

function drawHeatmap(r) {
  const names = api.manifest.labelNames;
  let max = 0;
  for (const row of r.logitEffect) for (const v of row) max = Math.max(max, Math.abs(v));
  const table = document.createElement('table');
  table.setAttribute('aria-label', 'logit effect, outputs by probes');
  const head = table.createTHead().insertRow();
  head.appendChild(document.createElement('th')).textContent = 'output \\ probe';
  for (const p of r.probes) head.appendChild(document.createElement('th')).textContent = String(p);
  const body = table.createTBody();
  r.logitEffect.forEach((row, o) => {
    const tr = body.insertRow();
    const th = tr.appendChild(document.createElement('th'));
    th.scope = 'row';
    th.textContent = names[o] ?? `output ${o}`;
    row.forEach((v, p) => {
      const td = tr.insertCell();
      td.className = 'cell';
      td.style.backgroundColor = color(v, max);
      td.title = `${names[o]}, probe ${r.probes[p]}: ${sci(v)}`;
    });
  });
  const legend = document.createElement('p');
  legend.className = 'hint';
  legend.textContent = `colour scale ±${sci(max)} (the largest |J_f(z)·B| here)`;
  $('heatmap').replaceChildren(table, legend);
}

function drawSensitive(r) {
  const names = api.manifest.labelNames;
  const scale = r.gradNormX * r.gradNormY;
  const rows = r.logitEffect
    .map((row, o) => ({ o, mean: row.reduce((a, v) => a + Math.abs(v), 0) / Math.max(1, row.length) }))
    .sort((a, b) => b.mean - a.mean)
    .slice(0, 5);
  $('sensitive').replaceChildren(
    ...rows.map(({ o, mean }) => {
      const li = document.createElement('li');
      li.textContent = `${names[o] ?? `output ${o}`}: mean |J_f(z)·B| ${sci(mean)} over the probes (normalised by ‖g_x‖‖g_y‖: ${sci(mean / scale)})`;
      return li;
    }),
  );
}

function drawTensors(r) {
  const entries = Object.entries(r.tensors);
  const maxLog = Math.max(...entries.map(([, t]) => Math.log10(Math.max(t.bracketRms, 1e-30))));
  const minLog = Math.min(...entries.map(([, t]) => Math.log10(Math.max(t.bracketRms, 1e-30))));
  const body = $('tensors').tBodies[0];
  body.replaceChildren(
    ...entries.map(([name, t]) => {
      const tr = document.createElement('tr');
      const cells = [name, sci(t.bracketRms), sci(t.gradRmsX), sci(t.gradRmsY), sci(t.bracketRms / (t.gradRmsX * t.gradRmsY))];
      cells.forEach((c, i) => {
        const td = tr.insertCell();
        td.textContent = c;
        if (i > 0) td.className = 'num';
      });
      const bar = document.createElement('span');
      bar.className = 'bar';
      const span = maxLog - minLog;
      const f = span > 0 ? (Math.log10(Math.max(t.bracketRms, 1e-30)) - minLog) / span : 1;
      bar.style.width = `${(0.1 + 0.9 * f) * 8}rem`;
      tr.insertCell().appendChild(bar);
      return tr;
    }),
  );
}

function labelOf(i) {
  const y = api.manifest.examples.targets[i];
  const names = api.manifest.labelNames;
  const on = names.filter((_, k) => y[k] > 0.5);
  return on.length === 0 ? 'no label' : on.length <= 2 ? on.join(', ') : `${on.slice(0, 2).join(', ')} +${on.length - 2}`;
}

function correct(i, logits) {
  const y = api.manifest.examples.targets[i];
  if (api.manifest.oneOfK) {
    let best = 0;
    for (let k = 1; k < logits.length; k++) if (logits[k] > logits[best]) best = k;
    return { text: api.manifest.labelNames[best], right: y[best] > 0.5 };
  }
  let ok = 0;
  for (let k = 0; k < logits.length; k++) if (logits[k] > 0 === y[k] > 0.5) ok++;
  return { text: `${ok}/${logits.length} right`, right: ok === logits.length };
}

function drawPredictions() {
  const logits = state.predictions.get(currentStep());
  if (!logits) return;
  for (let i = 0; i < logits.length; i++) {
    const el = $(`example-${i}`);
    const c = correct(i, logits[i]);
    el.querySelector('.pred').textContent = `pred: ${c.text}`;
    el.classList.toggle('wrong', !c.right);
    el.dataset.right = c.right ? '1' : '0';
  }
  applyFilter();
}

function applyFilter() {
  const cls = $('filter-class').value;
  const pred = $('filter-pred').value;
  const names = api.manifest.labelNames;
  const k = cls === 'all' ? -1 : names.indexOf(cls);
  let shown = 0;
  for (let i = 0; i < api.manifest.examples.count; i++) {
    const el = $(`example-${i}`);
    const y = api.manifest.examples.targets[i];
    let ok = k < 0 || y[k] > 0.5;
    if (pred !== 'all' && el.dataset.right !== undefined) ok = ok && (el.dataset.right === '1') === (pred === 'right');
    el.hidden = !ok;
    if (ok) shown++;
  }
  $('gallery').setAttribute('aria-label', `gallery of test examples (${shown} shown)`);
}

function drawSelection() {
  for (let i = 0; i < api.manifest.examples.count; i++) {
    const el = $(`example-${i}`);
    el.classList.toggle('sel-x', i === state.x);
    el.classList.toggle('sel-y', i === state.y);
    el.setAttribute('aria-pressed', String(i === state.x || i === state.y));
  }
  $('pair-label').textContent =
    state.x === null ? 'pick two examples' : state.y === null ? `x = ${state.x}; pick y` : `x = ${state.x} (red), y = ${state.y} (blue)`;
  $('swap').disabled = state.x === null || state.y === null;
}

function pick(i) {
  if (state.x === null || state.y !== null) {
    state.x = i;
    state.y = null;
  } else if (i !== state.x) state.y = i;
  drawSelection();
  compute();
}

function drawProbes() {
  const set = new Set(api.probes);
  for (let i = 0; i < api.manifest.examples.count; i++) $(`example-${i}`).classList.toggle('probe', set.has(i));
  $('probes-info').textContent = `${api.probes.length} probes (marked • in the gallery)`;
}

/** "0-31" or "0,5,9-12" → indices (in order, without repeats), or an error message. */
function parseProbes(text, count) {
  const out = [];
  for (const part of text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')) {
    const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(part);
    if (!m) return `"${part}" is not an index or a range a-b`;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) return `${part}: the range runs backwards`;
    if (b >= count) return `${part}: the gallery has examples 0…${count - 1}`;
    for (let i = a; i <= b; i++) if (!out.includes(i)) out.push(i);
  }
  if (out.length === 0) return 'no probes given';
  if (out.length > 512) return 'at most 512 probes';
  return out;
}

function buildGallery() {
  const m = api.manifest;
  const frag = document.createDocumentFragment();
  for (let i = 0; i < m.examples.count; i++) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'example';
    b.id = `example-${i}`;
    b.setAttribute('data-testid', `example-${i}`);
    b.setAttribute('aria-pressed', 'false');
    const img = document.createElement('img');
    img.src = m.examples.thumbs[i];
    img.alt = '';
    const idx = document.createElement('span');
    idx.className = 'idx';
    idx.textContent = `#${i}`;
    const lab = document.createElement('span');
    lab.className = 'label';
    lab.textContent = labelOf(i);
    const pred = document.createElement('span');
    pred.className = 'pred';
    pred.textContent = 'pred: …';
    b.append(img, idx, lab, pred);
    b.title = `test example ${i}: ${labelOf(i)}`;
    b.addEventListener('click', () => pick(i));
    frag.appendChild(b);
  }
  $('gallery').replaceChildren(frag);
}

async function start() {
  const r = await fetch('explorer.json');
  if (!r.ok) throw new Error(`explorer.json: HTTP ${r.status}`);
  const m = await r.json();
  api.manifest = m;
  api.probes = [...m.probes];
  $('run-info').textContent =
    `run “${m.run}”: model ${m.modelName} (${m.paramCount.toLocaleString('en')} parameters, float32), loss ${m.loss.name}, ${m.data}; test examples 0…${m.examples.count - 1}`;
  const slider = $('checkpoint-slider');
  slider.max = String(m.steps.length - 1);
  state.stepIndex = m.steps.length - 1;
  slider.value = String(state.stepIndex);
  const stepText = () => `step ${currentStep()} (${state.stepIndex + 1} of ${m.steps.length})`;
  $('step-label').textContent = stepText();
  slider.setAttribute('aria-valuetext', stepText());
  slider.addEventListener('input', () => {
    state.stepIndex = Number(slider.value);
    $('step-label').textContent = stepText();
    slider.setAttribute('aria-valuetext', stepText());
    requestPredictions();
    compute();
  });
  const fc = $('filter-class');
  fc.replaceChildren(...['all', ...m.labelNames].map((n) => new Option(n === 'all' ? (m.labelKind === 'class' ? 'all classes' : 'all') : n, n)));
  fc.addEventListener('change', applyFilter);
  $('filter-pred').addEventListener('change', applyFilter);
  $('jump').max = String(m.examples.count - 1);
  const jump = () => {
    const i = Number($('jump').value);
    if (!Number.isInteger(i) || i < 0 || i >= m.examples.count) {
      setStatus(`jump: give an index 0…${m.examples.count - 1}`, true);
      return;
    }
    const el = $(`example-${i}`);
    if (el.hidden) {
      fc.value = 'all';
      $('filter-pred').value = 'all';
      applyFilter();
    }
    el.scrollIntoView({ block: 'nearest' });
    el.focus();
  };
  $('jump-go').addEventListener('click', jump);
  $('jump').addEventListener('keydown', (e) => {
    if (e.key !== 'Enter') return;
    e.preventDefault(); // (else the Enter would go on to click the example that the jump focuses)
    jump();
  });
  $('probes').value = api.probes.length > 0 ? `0-${api.probes.length - 1}` : '';
  const applyProbes = () => {
    const p = parseProbes($('probes').value, m.examples.count);
    if (typeof p === 'string') {
      setStatus(`probes: ${p}`, true);
      return;
    }
    api.probes = p;
    drawProbes();
    compute();
  };
  $('probes-apply').addEventListener('click', applyProbes);
  $('probes').addEventListener('keydown', (e) => {
    if (e.key === 'Enter') applyProbes();
  });
  $('swap').addEventListener('click', () => {
    if (state.x === null || state.y === null) return;
    [state.x, state.y] = [state.y, state.x];
    drawSelection();
    compute();
  });
  $('clear').addEventListener('click', () => {
    state.x = null;
    state.y = null;
    drawSelection();
  });
  buildGallery();
  drawProbes();
  drawSelection();
  worker.postMessage({ type: 'init', base: new URL('.', location.href).href });
}

start().catch((e) => setStatus(`could not load the explorer: ${e.message}`, true));
