// svckit dev dashboard: a hand-written single-page application, no framework, no build
// step. Pages are chosen by the URL's hash (#/services, #/trace/ID, #/logs?trace_id=…);
// live data arrives over server-sent events (/api/stream/status, /api/stream/logs).
'use strict';

const $ = (sel, root) => (root || document).querySelector(sel);
const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

// h builds an element: h('div', {class: 'x', onclick: f}, child, 'text', …).
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) {
    if (kid === undefined || kid === null || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

// PAGE_HEADER marks the dashboard's own requests: with the session cookie (set when the
// page is opened with the secret URL that svckit dev prints) it allows what changes
// something. A page of another origin cannot send it.
const PAGE_HEADER = 'X-Svckit-Dashboard';

async function api(path, opts) {
  opts = Object.assign({}, opts);
  opts.headers = Object.assign({[PAGE_HEADER]: '1'}, opts.headers);
  const r = await fetch(path, opts);
  const text = await r.text();
  let body;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = text; }
  if (!r.ok) throw new Error((body && body.error) || r.status + ' ' + r.statusText);
  return body;
}

function fmtDur(ns) {
  const ms = ns / 1e6;
  if (ms < 1) return (ns / 1e3).toFixed(0) + ' µs';
  if (ms < 1000) return ms.toFixed(ms < 10 ? 2 : 1) + ' ms';
  return (ms / 1000).toFixed(2) + ' s';
}
function fmtSecs(s) {
  if (!s) return '–';
  if (s < 60) return s.toFixed(0) + ' s';
  if (s < 3600) return (s / 60).toFixed(0) + ' min';
  return (s / 3600).toFixed(1) + ' h';
}
function fmtTime(t) {
  const d = new Date(t);
  return d.toLocaleTimeString([], {hour12: false}) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}
function fmtNum(v, digits) { return v === undefined || v === null ? '–' : Number(v).toFixed(digits === undefined ? 1 : digits); }

// No red in the service colours: red marks errors.
const PALETTE = ['#2f6fde', '#e0702b', '#1f9d55', '#a051c9', '#1199aa', '#b8860b', '#6b7a99', '#e05a9c', '#4b8b3b', '#7a5c3e'];
const ERR_PALETTE = ['#d64545', '#e0702b', '#a051c9', '#b8860b', '#e05a9c', '#7a5c3e'];
const svcColors = {};
function svcColor(name) {
  if (!(name in svcColors)) svcColors[name] = PALETTE[Object.keys(svcColors).length % PALETTE.length];
  return svcColors[name];
}

// ---- global state and the status stream --------------------------------------------

const state = {status: null, page: null, cleanup: [], listeners: []};

function onStatus(f) { state.listeners.push(f); }

function startStatusStream() {
  const es = new EventSource('api/stream/status');
  const live = $('#live');
  es.addEventListener('open', () => { live.className = 'live on'; live.textContent = '● live'; });
  es.addEventListener('error', () => { live.className = 'live off'; live.textContent = '● offline'; });
  const series = new Map(); // "service/transport/method" → series with its last 150 points
  es.addEventListener('open', () => series.clear()); // a new stream starts with full series
  es.addEventListener('status', ev => {
    const st = JSON.parse(ev.data);
    for (const s of st.metrics) { // events carry only the points that are new
      const id = `${s.service}/${s.transport}/${s.method}`;
      const have = series.get(id);
      if (have) have.points = have.points.concat(s.points).slice(-150);
      else series.set(id, s);
    }
    st.metrics = [...series.values()].sort((a, b) => (a.service + a.method + a.transport).localeCompare(b.service + b.method + b.transport));
    state.status = st;
    for (const s of st.system.services) svcColor(s.name);
    $('#sysname').textContent = st.system.name;
    $('#counts').textContent = `${st.system.traces} traces · ${st.system.spans} spans · ${st.system.logs} log lines`;
    document.body.dataset.statusTime = st.time;
    for (const f of state.listeners) { try { f(st); } catch (e) { console.error(e); } }
  });
}

// ---- router --------------------------------------------------------------------------

const pages = {};

function route() {
  for (const f of state.cleanup) f();
  state.cleanup = [];
  state.listeners = [];
  const hash = location.hash.replace(/^#\/?/, '') || 'services';
  const [path, query] = hash.split('?');
  const parts = path.split('/');
  const params = new URLSearchParams(query || '');
  let name = parts[0];
  if (!pages[name]) name = 'services';
  state.page = name;
  document.body.dataset.page = name;
  for (const a of $$('#nav a')) a.classList.toggle('active', a.dataset.page === (name === 'trace' ? 'traces' : name));
  const main = $('#main');
  main.replaceChildren();
  pages[name](main, parts.slice(1), params);
  if (state.status) for (const f of state.listeners) f(state.status);
}

// ---- Services page -------------------------------------------------------------------

pages.services = function (main) {
  const table = h('div', {id: 'svc-table'});
  const arch = h('div', {id: 'arch'});
  main.append(
    h('div', {class: 'panel'}, h('h2', {}, 'Services and instances'), table),
    h('div', {class: 'panel'}, h('h2', {}, 'Architecture ', h('span', {class: 'muted'}, '(calls seen in traces; dashed: events)')), arch));
  onStatus(st => {
    renderServices(table, st);
    renderArch(arch, st.system.services.map(s => s.name), st.edges);
  });
};

function latest(series, service) {
  let rate = 0, err = 0, p99 = 0;
  for (const s of series) {
    if (s.service !== service || !s.points.length) continue;
    const p = s.points[s.points.length - 1];
    rate += p.rate; err += p.error_rate; p99 = Math.max(p99, p.p99);
  }
  return {rate, err, p99};
}

function renderServices(el, st) {
  const rows = [];
  for (const svc of st.system.services) {
    const red = latest(st.metrics, svc.name);
    svc.instances.forEach((inst, i) => {
      const health = inst.state !== 'running' ? h('span', {class: 'badge warn'}, inst.state)
        : h('span', {}, h('span', {class: 'badge ' + (inst.healthy ? 'ok' : 'err'), title: inst.health_error || ''}, inst.healthy ? 'healthy' : 'unhealthy'), ' ',
          h('span', {class: 'badge ' + (inst.ready ? 'ok' : 'warn')}, inst.ready ? 'ready' : 'not ready'));
      rows.push(h('tr', {class: 'instance', 'data-id': inst.id, 'data-state': inst.state},
        i === 0 ? h('td', {rowspan: svc.instances.length},
          h('b', {style: {color: svcColor(svc.name)}}, svc.name), svc.public ? h('span', {class: 'badge'}, 'public') : '',
          h('div', {class: 'muted mono'}, svc.version || ''),
          h('div', {class: 'muted'}, `${fmtNum(red.rate)} req/s · ${fmtNum(red.err, 2)} err/s · p99 ${fmtNum(red.p99 * 1000)} ms`)) : null,
        h('td', {class: 'mono'}, inst.id),
        h('td', {}, health, inst.last_exit ? h('div', {class: 'muted', title: inst.last_exit}, 'last exit: ' + inst.last_exit) : ''),
        h('td', {}, String(inst.pid || '–')),
        h('td', {}, String(inst.restarts)),
        h('td', {}, fmtSecs(inst.uptime_s)),
        h('td', {class: 'mono'}, Object.entries(inst.addrs || {}).sort().map(([k, v]) => h('div', {}, k + ' ', k === 'http' ? h('span', {}, v) : v))),
        h('td', {}, h('button', {class: 'danger kill', 'data-id': inst.id,
          title: inst.state === 'failed' ? 'starts it again (it failed with a configuration error and waits for a change)' : 'SIGKILL; the supervisor restarts it',
          onclick: () => killInstance(inst.id)}, 'kill'))));
    });
  }
  el.replaceChildren(h('table', {},
    h('thead', {}, h('tr', {}, ['service', 'instance', 'health', 'pid', 'restarts', 'uptime', 'addresses', ''].map(t => h('th', {}, t)))),
    h('tbody', {}, rows)),
  h('div', {class: 'muted', style: {marginTop: '8px'}}, `collector and dashboard ${st.system.url}`, st.system.nats ? ` · NATS ${st.system.nats}` : '',
    ` · OTLP/HTTP traces at ${st.system.url}/v1/traces`));
}

async function killInstance(id) {
  try {
    const r = await api('api/instances/' + encodeURIComponent(id) + '/kill', {method: 'POST'});
    notice(r && r.started ? `started ${id} again` : `killed ${id}; the supervisor restarts it`, false);
  } catch (e) { notice(`${id}: ${e.message}`, true); }
}

// notice shows a message above the page until the next one or a click.
function notice(text, isError) {
  const el = $('#notice');
  el.className = isError ? 'notice error-text' : 'notice';
  el.dataset.error = isError ? '1' : '';
  el.textContent = text;
  el.hidden = false;
}

// checkSession tells a browser that did not open the secret URL that it only reads.
async function checkSession() {
  const el = $('#session');
  try {
    const s = await api('api/session');
    el.hidden = s.authorized;
    document.body.dataset.authorized = s.authorized ? '1' : '';
  } catch (e) { el.hidden = true; }
}

// renderArch draws services and subjects in columns by call depth, with arrows.
function renderArch(el, services, edges) {
  const key = JSON.stringify([services, edges.map(e => [e.from, e.to, e.kind])]);
  if (el.dataset.key === key) { // only counts changed
    for (const t of $$('.elabel', el)) {
      const e = edges.find(x => x.from + '>' + x.to + '>' + x.kind === t.dataset.edge);
      if (e) t.textContent = e.count || '';
    }
    return;
  }
  el.dataset.key = key;
  const nodes = new Map();
  const add = (name, kind) => { if (!nodes.has(name)) nodes.set(name, {name, kind, depth: 0}); };
  services.forEach(s => add(s, 'service'));
  for (const e of edges) {
    add(e.from, e.kind === 'consume' ? 'subject' : 'service');
    add(e.to, e.kind === 'publish' ? 'subject' : 'service');
  }
  // depth: longest path from a node without incoming edges (bounded against cycles)
  for (let i = 0; i < nodes.size; i++) {
    for (const e of edges) {
      const a = nodes.get(e.from), b = nodes.get(e.to);
      if (a !== b && b.depth < a.depth + 1 && a.depth + 1 < nodes.size) b.depth = a.depth + 1;
    }
  }
  const cols = [];
  for (const n of nodes.values()) (cols[n.depth] = cols[n.depth] || []).push(n);
  const W = 150, H = 34, GX = 90, GY = 26;
  let maxRows = 0;
  cols.forEach((col, ci) => {
    col = col || [];
    col.forEach((n, ri) => { n.x = 20 + ci * (W + GX); n.y = 20 + ri * (H + GY); });
    maxRows = Math.max(maxRows, col.length);
  });
  const width = Math.max(600, 40 + cols.length * (W + GX));
  const height = Math.max(80, 40 + maxRows * (H + GY));
  const NS = 'http://www.w3.org/2000/svg';
  const s = (tag, attrs, ...kids) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    for (const kid of kids) e.append(kid);
    return e;
  };
  const svg = s('svg', {viewBox: `0 0 ${width} ${height}`, height});
  svg.append(s('defs', {}, s('marker', {id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse'},
    s('path', {d: 'M 0 0 L 10 5 L 0 10 z', fill: '#7d8aa3'}))));
  for (const e of edges) {
    const a = nodes.get(e.from), b = nodes.get(e.to);
    let x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    if (b.x <= a.x) { x1 = a.x + W / 2; y1 = a.y + H; x2 = b.x + W / 2; y2 = b.y; }
    const mx = (x1 + x2) / 2;
    svg.append(s('path', {class: 'edge ' + e.kind, d: `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`, 'marker-end': 'url(#arrow)',
      'data-from': e.from, 'data-to': e.to, 'data-kind': e.kind}));
    const t = s('text', {class: 'elabel', x: mx, y: (y1 + y2) / 2 - 4, 'text-anchor': 'middle', 'data-edge': e.from + '>' + e.to + '>' + e.kind});
    t.textContent = e.count || ''; // 0: known from the event source's consumers, no traffic traced
    svg.append(t);
  }
  for (const n of nodes.values()) {
    const label = s('text', {x: n.x + 10, y: n.y + H / 2 + 4});
    label.textContent = (n.kind === 'subject' ? '⇄ ' : '') + n.name;
    const g = s('g', {class: 'node ' + n.kind, 'data-name': n.name},
      s('rect', {class: 'box', x: n.x, y: n.y, width: W, height: H, rx: 6}),
      s('rect', {x: n.x + 1, y: n.y + 4, width: 5, height: H - 8, rx: 2, fill: n.kind === 'service' ? svcColor(n.name) : '#d9b25c'}),
      label);
    svg.append(g);
  }
  el.replaceChildren(svg);
}

// ---- Metrics page --------------------------------------------------------------------

pages.metrics = function (main) {
  const sel = h('select', {id: 'metric-service'}, h('option', {value: ''}, 'all services'));
  const grid = h('div', {class: 'grid', id: 'charts'});
  main.append(h('div', {class: 'panel'}, h('h2', {}, 'RED metrics per endpoint ',
    h('span', {class: 'muted'}, '(scraped every 2 s from each instance\'s /metrics; summed over instances)')),
  h('form', {class: 'filters', onsubmit: e => e.preventDefault()}, h('label', {}, 'service', sel))), grid);
  sel.addEventListener('change', () => { grid.replaceChildren(); if (state.status) drawMetrics(grid, state.status, sel.value); });
  onStatus(st => {
    const have = new Set($$('option', sel).map(o => o.value));
    for (const s of st.system.services) if (!have.has(s.name)) sel.append(h('option', {value: s.name}, s.name));
    drawMetrics(grid, st, sel.value);
  });
};

function drawMetrics(grid, st, service) {
  const series = st.metrics.filter(s => !service || s.service === service);
  if (!series.length) {
    grid.replaceChildren(h('div', {class: 'muted empty'}, 'No RED series yet: metrics appear after two scrapes of an endpoint that served requests.'));
    return;
  }
  for (const e of $$('.empty', grid)) e.remove();
  for (const s of series) {
    const id = `${s.service}/${s.transport}/${s.method}`;
    let box = $$('.chartbox', grid).find(b => b.dataset.series === id);
    if (!box) {
      box = h('div', {class: 'chartbox', 'data-series': id},
        h('h3', {}, h('span', {style: {color: svcColor(s.service)}}, s.service), ' ', s.method, ' ', h('span', {class: 'badge'}, s.transport)),
        h('div', {class: 'muted'}, 'requests/s'), h('canvas', {class: 'rate'}),
        h('div', {class: 'muted'}, 'errors/s by kind'), h('canvas', {class: 'errors'}), h('div', {class: 'legend errlegend'}),
        h('div', {class: 'muted'}, 'latency (ms)'), h('canvas', {class: 'latency'}),
        h('div', {class: 'legend'}, [['p50', '#1f9d55'], ['p95', '#e0702b'], ['p99', '#d64545']].map(([l, c]) => h('span', {}, h('i', {style: {background: c}}), l))));
      grid.append(box);
    }
    const t = s.points.map(p => new Date(p.t).getTime());
    drawChart($('canvas.rate', box), t, [{color: '#2f6fde', values: s.points.map(p => p.rate), fill: true}], 'req/s');
    const kinds = [...new Set(s.points.flatMap(p => Object.keys(p.error_kinds || {})))].sort();
    const errSeries = kinds.map((k, i) => ({label: k, color: ERR_PALETTE[i % ERR_PALETTE.length], values: s.points.map(p => (p.error_kinds || {})[k] || 0)}));
    if (!errSeries.length) errSeries.push({label: 'errors', color: '#d64545', values: s.points.map(p => p.error_rate)});
    drawChart($('canvas.errors', box), t, errSeries, 'err/s');
    $('.errlegend', box).replaceChildren(...errSeries.map(e => h('span', {}, h('i', {style: {background: e.color}}), e.label)));
    drawChart($('canvas.latency', box), t, [
      {color: '#1f9d55', values: s.points.map(p => p.p50 * 1000)},
      {color: '#e0702b', values: s.points.map(p => p.p95 * 1000)},
      {color: '#d64545', values: s.points.map(p => p.p99 * 1000)}], 'ms');
  }
}

// drawChart draws line series over time on a canvas, with a y axis from 0.
function drawChart(canvas, times, series, unit) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 360, hgt = canvas.clientHeight || 110;
  canvas.width = w * dpr; canvas.height = hgt * dpr;
  const ctx = canvas.getContext('2d');
  ctx.scale(dpr, dpr);
  ctx.clearRect(0, 0, w, hgt);
  const L = 44, R = 6, T = 6, B = 16;
  let maxV = 0;
  for (const s of series) for (const v of s.values) if (isFinite(v)) maxV = Math.max(maxV, v);
  maxV = niceMax(maxV);
  const t0 = times.length ? times[0] : 0, t1 = times.length ? times[times.length - 1] : 1;
  const x = t => L + (t1 === t0 ? 0 : (t - t0) / (t1 - t0)) * (w - L - R);
  const y = v => T + (1 - v / maxV) * (hgt - T - B);
  ctx.strokeStyle = '#e6e8ee'; ctx.fillStyle = '#6b7385'; ctx.font = '10px system-ui, sans-serif'; ctx.lineWidth = 1;
  for (let i = 0; i <= 2; i++) {
    const v = maxV * i / 2, yy = Math.round(y(v)) + 0.5;
    ctx.beginPath(); ctx.moveTo(L, yy); ctx.lineTo(w - R, yy); ctx.stroke();
    ctx.fillText(fmtAxis(v), 2, yy + 3);
  }
  if (times.length) {
    ctx.fillText(fmtTime(t0).slice(0, 8), L, hgt - 3);
    const lbl = fmtTime(t1).slice(0, 8);
    ctx.fillText(lbl, w - R - ctx.measureText(lbl).width, hgt - 3);
  } else {
    ctx.fillText('no data', L + 4, hgt / 2);
  }
  for (const s of series) {
    ctx.strokeStyle = s.color; ctx.lineWidth = 1.5;
    ctx.beginPath();
    s.values.forEach((v, i) => { const px = x(times[i]), py = y(v || 0); if (i) ctx.lineTo(px, py); else ctx.moveTo(px, py); });
    ctx.stroke();
    if (s.fill && s.values.length) {
      ctx.lineTo(x(times[times.length - 1]), y(0)); ctx.lineTo(x(times[0]), y(0)); ctx.closePath();
      ctx.globalAlpha = 0.12; ctx.fillStyle = s.color; ctx.fill(); ctx.globalAlpha = 1;
    }
  }
  canvas.dataset.points = String(times.length);
}
function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}
function fmtAxis(v) { return v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(2); }

// ---- Traces page ---------------------------------------------------------------------

pages.traces = function (main, _, params) {
  const f = h('form', {class: 'filters', id: 'trace-filters'},
    h('label', {}, 'service', h('select', {name: 'service'}, h('option', {value: ''}, 'any'))),
    h('label', {}, 'endpoint', h('input', {name: 'name', placeholder: 'span name contains', size: 16})),
    h('label', {}, h('input', {type: 'checkbox', name: 'error', value: '1'}), 'errors only'),
    h('label', {}, 'min ms', h('input', {name: 'min_ms', type: 'number', min: 0, step: 'any', style: {width: '70px'}})),
    h('label', {}, 'trace id', h('input', {name: 'id', placeholder: 'prefix', size: 20, class: 'mono'})),
    h('button', {type: 'submit'}, 'search'),
    h('label', {}, h('input', {type: 'checkbox', name: 'live', checked: true}), 'live'));
  if (params.get('service')) f.elements.service.append(h('option', {value: params.get('service')}, params.get('service')));
  for (const [k, v] of params) { const inp = f.elements[k]; if (inp) { if (inp.type === 'checkbox') inp.checked = !!v; else inp.value = v; } }
  const list = h('div', {id: 'trace-list'});
  main.append(h('div', {class: 'panel'}, h('h2', {}, 'Traces'), f, list));
  const query = () => {
    const q = new URLSearchParams();
    for (const k of ['service', 'name', 'min_ms', 'id']) if (f.elements[k].value) q.set(k, f.elements[k].value);
    if (f.elements.error.checked) q.set('error', '1');
    return q;
  };
  let busy = false;
  const load = async () => {
    if (busy) return;
    busy = true;
    try { renderTraceList(list, await api('api/traces?' + query())); }
    catch (e) { list.replaceChildren(h('div', {class: 'error-text'}, e.message)); }
    finally { busy = false; }
  };
  f.addEventListener('submit', e => { e.preventDefault(); history.replaceState(null, '', '#/traces?' + query()); load(); });
  load();
  onStatus(st => {
    const sel = f.elements.service, have = new Set($$('option', sel).map(o => o.value));
    for (const s of st.system.services) if (!have.has(s.name)) sel.append(h('option', {value: s.name}, s.name));
    if (f.elements.live.checked) load();
  });
};

function renderTraceList(el, traces) {
  if (!traces.length) { el.replaceChildren(h('div', {class: 'muted'}, 'No traces match.')); return; }
  el.replaceChildren(h('table', {},
    h('thead', {}, h('tr', {}, ['time', 'root', 'services', 'spans', 'duration', 'status', 'trace id'].map(t => h('th', {}, t)))),
    h('tbody', {}, traces.map(t => h('tr', {class: 'click trace', 'data-id': t.id, 'data-services': t.services.join(' '), onclick: () => { location.hash = '#/trace/' + t.id; }},
      h('td', {class: 'mono'}, fmtTime(t.start)),
      h('td', {}, h('span', {style: {color: svcColor(t.service)}}, t.service), ' ', t.root),
      h('td', {}, t.services.map(s => h('span', {class: 'badge', style: {color: svcColor(s)}}, s))),
      h('td', {}, String(t.spans)),
      h('td', {class: 'mono'}, fmtDur(t.duration_ns)),
      h('td', {}, t.error ? h('span', {class: 'badge err'}, 'error') : h('span', {class: 'badge ok'}, 'ok')),
      h('td', {class: 'mono'}, h('a', {href: '#/trace/' + t.id}, t.id.slice(0, 16) + '…')))))));
}

// ---- Trace page: the waterfall -------------------------------------------------------

pages.trace = function (main, parts) {
  const id = parts[0] || '';
  const box = h('div', {class: 'panel', id: 'trace'}, h('div', {class: 'muted'}, 'loading trace ' + id + '…'));
  main.append(box);
  let spansSeen = -1;
  const load = async () => {
    try {
      const t = await api('api/traces/' + encodeURIComponent(id));
      if (t.spans.length !== spansSeen) { spansSeen = t.spans.length; renderTrace(box, t); }
    } catch (e) { box.replaceChildren(h('div', {class: 'error-text'}, e.message), h('a', {href: '#/traces'}, 'back to traces')); }
  };
  load();
  onStatus(load); // late spans (other processes export every 500 ms) fill in
};

// spanTree orders spans depth-first by start time and sets each one's depth. A span whose
// parent is not in the trace (not received, or outside it) is shown at the top level.
function spanTree(spans) {
  const byId = new Map(spans.map(s => [s.span_id, s]));
  const kids = new Map();
  const roots = [];
  for (const s of spans) {
    if (s.parent_id && byId.has(s.parent_id)) {
      if (!kids.has(s.parent_id)) kids.set(s.parent_id, []);
      kids.get(s.parent_id).push(s);
    } else roots.push(s);
  }
  const byStart = (a, b) => new Date(a.start) - new Date(b.start);
  const out = [];
  const walk = (s, depth) => {
    s._depth = depth;
    s._orphan = !!(s.parent_id && !byId.has(s.parent_id));
    out.push(s);
    (kids.get(s.span_id) || []).sort(byStart).forEach(k => walk(k, depth + 1));
  };
  roots.sort(byStart).forEach(r => walk(r, 0));
  return out;
}

function renderTrace(box, t) {
  const ordered = spanTree(t.spans);
  // Times in nanoseconds relative to the first span's millisecond (a Date holds milliseconds).
  const base = new Date(t.spans[0].start).getTime();
  const ns = x => (new Date(x).getTime() - base) * 1e6 + (Number((String(x).match(/\.(\d+)/) || [])[1]?.padEnd(9, '0').slice(3, 9)) || 0);
  const t0 = Math.min(...t.spans.map(s => ns(s.start)));
  const t1 = Math.max(...t.spans.map(s => ns(s.end)));
  const total = Math.max(t1 - t0, 1);
  const detail = h('div', {id: 'span-detail', class: 'panel'}, h('div', {class: 'muted'}, 'Click a span for its attributes.'));
  const rows = ordered.map(s => {
    const start = ns(s.start) - t0, dur = ns(s.end) - ns(s.start);
    const row = h('div', {class: 'row span-row', 'data-span-id': s.span_id, 'data-parent-id': s.parent_id || '', 'data-depth': s._depth,
      'data-service': s.service, 'data-name': s.name, 'data-kind': s.kind},
    h('div', {class: 'name', style: {paddingLeft: (4 + s._depth * 16) + 'px'}, title: s.name},
      h('span', {class: 'svc', style: {background: svcColor(s.service)}}),
      h('b', {}, s.service), ' ', s.name, ' ', h('span', {class: 'muted'}, s.kind),
      s._orphan ? h('span', {class: 'badge warn', title: 'parent span not received'}, '?') : '',
      s.error ? h('span', {class: 'badge err'}, 'error') : ''),
    h('div', {class: 'track'}, h('div', {class: 'bar' + (s.error ? ' error' : ''), style: {
      left: (100 * start / total) + '%', width: Math.max(0.2, 100 * dur / total) + '%', background: svcColor(s.service)}})),
    h('div', {class: 'dur'}, fmtDur(dur)));
    row.addEventListener('click', () => {
      $$('.span-row.sel', box).forEach(r => r.classList.remove('sel'));
      row.classList.add('sel');
      showSpan(detail, s, t);
    });
    return row;
  });
  const sum = t.summary;
  box.replaceChildren(
    h('h2', {}, 'Trace ', h('span', {class: 'mono', id: 'trace-id'}, t.id)),
    h('div', {class: 'muted'}, `${sum.root} · ${t.spans.length} spans · ${sum.services.join(', ')} · ${fmtDur(sum.duration_ns)} · started ${fmtTime(sum.start)} `,
      sum.error ? h('span', {class: 'badge err'}, 'error') : '', ' ',
      h('a', {href: '#/logs?trace_id=' + t.id, id: 'trace-logs-link'}, `${t.logs} log lines of this trace →`)),
    h('div', {class: 'wf', id: 'waterfall', style: {marginTop: '10px'}},
      h('div', {class: 'row head'}, h('div', {}, 'service / span'), h('div', {class: 'track'}, '0 … ' + fmtDur(total)), h('div', {class: 'dur'}, 'duration')),
      rows),
    detail);
}

function showSpan(el, s, t) {
  const attrs = Object.entries(s.attrs || {}).sort();
  const start = new Date(s.start), end = new Date(s.end);
  el.replaceChildren(
    h('h3', {}, s.service, ' · ', s.name),
    s.error ? h('div', {class: 'error-text'}, 'error: ' + (s.status || '(no message)')) : '',
    h('table', {class: 'kv'}, h('tbody', {},
      [['span id', s.span_id], ['parent id', s.parent_id || '(root)'], ['kind', s.kind], ['start', start.toISOString()], ['end', end.toISOString()],
        ['status', s.error ? 'error' : 'ok'], ...attrs].map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, v))))),
    h('a', {href: '#/logs?trace_id=' + t.id + '&service=' + encodeURIComponent(s.service)}, 'log lines of ' + s.service + ' in this trace →'));
}

// ---- Logs page -----------------------------------------------------------------------

pages.logs = function (main, _, params) {
  const f = h('form', {class: 'filters', id: 'log-filters'},
    h('label', {}, 'service', h('select', {name: 'service'}, h('option', {value: ''}, 'any'))),
    h('label', {}, 'level ≥', h('select', {name: 'level'}, ['', 'DEBUG', 'INFO', 'WARN', 'ERROR'].map(l => h('option', {value: l}, l || 'any')))),
    h('label', {}, 'text', h('input', {name: 'text', size: 18})),
    h('label', {}, 'trace id', h('input', {name: 'trace_id', size: 34, class: 'mono'})),
    h('button', {type: 'submit'}, 'filter'),
    h('label', {}, h('input', {type: 'checkbox', name: 'follow', checked: true}), 'follow'));
  for (const k of ['service', 'level', 'text', 'trace_id']) if (params.get(k)) {
    if (k === 'service') f.elements.service.append(h('option', {value: params.get(k)}, params.get(k)));
    f.elements[k].value = params.get(k);
  }
  const list = h('div', {id: 'loglines'});
  const count = h('span', {class: 'muted', id: 'log-count'});
  main.append(h('div', {class: 'panel'}, h('h2', {}, 'Logs ', count), f, list));
  let es = null;
  let n = 0;
  const query = () => {
    const q = new URLSearchParams();
    for (const k of ['service', 'level', 'text', 'trace_id']) if (f.elements[k].value) q.set(k, f.elements[k].value);
    return q;
  };
  const append = (lines, scroll) => {
    const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 30;
    const frag = document.createDocumentFragment();
    for (const l of lines) frag.append(logRow(l));
    list.append(frag);
    n += lines.length;
    while (list.childElementCount > 2000) { list.firstChild.remove(); n--; }
    count.textContent = `(${list.childElementCount} lines shown)`;
    if (scroll || (atBottom && f.elements.follow.checked)) list.scrollTop = list.scrollHeight;
  };
  const start = async () => {
    if (es) es.close();
    list.replaceChildren(); n = 0;
    const q = query();
    q.set('limit', '1000');
    try {
      const lines = await api('api/logs?' + q);
      append(lines, true);
      list.dataset.loaded = '1';
    } catch (e) { list.replaceChildren(h('div', {class: 'error-text'}, e.message)); return; }
    q.delete('limit');
    es = new EventSource('api/stream/logs?' + q);
    const pending = [];
    let timer = null;
    es.addEventListener('log', ev => {
      pending.push(JSON.parse(ev.data));
      if (!timer) timer = setTimeout(() => { timer = null; append(pending.splice(0)); }, 100);
    });
  };
  f.addEventListener('submit', e => { e.preventDefault(); history.replaceState(null, '', '#/logs?' + query()); start(); });
  state.cleanup.push(() => { if (es) es.close(); });
  start();
  onStatus(st => {
    const sel = f.elements.service, have = new Set($$('option', sel).map(o => o.value));
    for (const name of ['svckit', ...st.system.services.map(s => s.name)]) if (!have.has(name)) sel.append(h('option', {value: name}, name));
  });
};

function logRow(l) {
  let attrs = null;
  if (l.raw && l.raw[0] === '{') { try { attrs = JSON.parse(l.raw); } catch (e) { attrs = null; } }
  const kv = [];
  if (attrs) for (const [k, v] of Object.entries(attrs)) {
    if (['time', 'level', 'msg', 'service', 'trace_id', 'span_id'].includes(k)) continue;
    kv.push(k + '=' + (typeof v === 'object' ? JSON.stringify(v) : v));
  }
  return h('div', {class: 'logline', 'data-trace-id': l.trace_id || '', 'data-service': l.service, 'data-seq': l.seq},
    h('span', {class: 'muted'}, fmtTime(l.time)),
    h('span', {style: {color: svcColor(l.service)}}, l.instance || l.service),
    h('span', {class: 'lv-' + (l.level || '')}, l.level || l.stream),
    h('span', {class: 'text'}, attrs ? l.msg || '' : l.raw, ' ', h('span', {class: 'kvs'}, kv.join(' ')), ' ',
      l.trace_id ? h('a', {href: '#/trace/' + l.trace_id, class: 'tracelink', title: 'open the trace'}, 'trace ' + l.trace_id.slice(0, 8)) : ''));
}

// ---- API explorer --------------------------------------------------------------------

pages.api = async function (main) {
  const left = h('div', {class: 'panel eplist', id: 'endpoints'}, h('div', {class: 'muted'}, 'loading…'));
  const right = h('div', {class: 'panel', id: 'call'}, h('div', {class: 'muted'}, 'Choose an endpoint.'));
  main.append(h('div', {class: 'split'}, left, right));
  let apis;
  try { apis = await api('api/explorer'); } catch (e) { left.replaceChildren(h('div', {class: 'error-text'}, e.message)); return; }
  left.replaceChildren();
  for (const a of apis) {
    left.append(h('h3', {style: {marginTop: '8px', color: svcColor(a.service)}}, a.service, ' ',
      a.public ? h('span', {class: 'badge', title: 'called as the development user'}, 'public') : h('span', {class: 'badge', title: a.read_only_reason}, 'internal: read-only'), ' ',
      h('span', {class: 'badge', title: a.source === 'traces' ? 'no OpenAPI document: endpoints seen in traces, method and path guessed' : ''},
        a.source === 'openapi' ? 'OpenAPI' : a.source === 'traces' ? 'from traces' : 'no endpoints yet')),
    a.error ? h('div', {class: 'error-text'}, a.error) : '');
    for (const ep of a.endpoints) {
      const readOnly = a.read_only && !['GET', 'HEAD'].includes(ep.method);
      const item = h('div', {'data-service': a.service, 'data-method': ep.method, 'data-path': ep.path, class: readOnly ? 'ro' : null,
        title: readOnly ? a.read_only_reason : ep.summary || ep.name},
        h('span', {class: 'method'}, ep.method), h('span', {class: 'mono'}, ep.path),
        h('span', {class: 'muted'}, ep.guessed ? ` ${ep.name} (${ep.transport})` : ` ${ep.summary || ep.name || ''}`));
      item.addEventListener('click', () => {
        $$('div.sel', left).forEach(x => x.classList.remove('sel'));
        item.classList.add('sel');
        callForm(right, a, ep);
      });
      left.append(item);
    }
  }
};

function callForm(el, a, ep) {
  const method = h('select', {name: 'method'}, ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'].map(m => h('option', {value: m, selected: m === ep.method}, m)));
  const submit = h('button', {type: 'submit'}, 'send');
  const ro = h('div', {class: 'muted', id: 'read-only-note'});
  const checkMethod = () => {
    const blocked = a.read_only && !['GET', 'HEAD'].includes(method.value);
    submit.disabled = blocked;
    ro.textContent = blocked ? a.read_only_reason : '';
  };
  method.addEventListener('change', checkMethod);
  const path = h('input', {name: 'path', value: ep.path, size: 40, class: 'mono'});
  const auth = h('input', {name: 'auth', size: 40, class: 'mono', placeholder: a.token ? 'dev token added by svckit dev' : 'Bearer …'});
  const body = h('textarea', {name: 'body', rows: 8}, ep.has_body ? ep.example || '{}' : '');
  const out = h('div', {id: 'call-result'});
  const send = async e => {
    e.preventDefault();
    out.replaceChildren(h('div', {class: 'muted'}, 'calling…'));
    const opts = {method: method.value, headers: {[PAGE_HEADER]: '1'}};
    if (auth.value) opts.headers['Authorization'] = auth.value;
    if (!['GET', 'HEAD'].includes(method.value) && body.value) { opts.body = body.value; opts.headers['Content-Type'] = 'application/json'; }
    const t0 = performance.now();
    try {
      const r = await fetch('api/call/' + encodeURIComponent(a.service) + '/' + path.value.replace(/^\//, ''), opts);
      const text = await r.text();
      let pretty = text;
      try { pretty = JSON.stringify(JSON.parse(text), null, 2); } catch (err) { /* not JSON */ }
      out.replaceChildren(
        h('div', {}, h('span', {class: 'badge ' + (r.ok ? 'ok' : 'err'), id: 'call-status'}, r.status + ' ' + r.statusText), ' ',
          h('span', {class: 'muted'}, `${(performance.now() - t0).toFixed(1)} ms · ${r.headers.get('X-Svckit-Instance') || ''}`)),
        h('pre', {}, [...r.headers.entries()].map(([k, v]) => k + ': ' + v).join('\n')),
        h('pre', {id: 'call-body', style: {marginTop: '6px'}}, pretty));
    } catch (err) { out.replaceChildren(h('div', {class: 'error-text'}, err.message)); }
  };
  el.replaceChildren(
    h('h2', {}, a.service, ' · ', ep.name || ep.path),
    ep.summary ? h('div', {}, ep.summary) : '', ep.description ? h('div', {class: 'muted'}, ep.description) : '',
    ep.guessed ? h('div', {class: 'muted'}, 'No OpenAPI document: method and path are guessed from the span name; edit them.') : '',
    h('form', {id: 'call-form', onsubmit: send},
      h('div', {class: 'filters'}, method, path, submit),
      ro,
      h('div', {class: 'filters'}, h('label', {}, 'Authorization', auth)),
      h('div', {}, body)),
    out);
  checkMethod();
}

// ---- Events page ---------------------------------------------------------------------

pages.events = function (main) {
  const streams = h('div', {id: 'streams'}, h('div', {class: 'muted'}, 'loading…'));
  const msgs = h('div', {id: 'messages'});
  main.append(h('div', {class: 'panel'}, h('h2', {}, 'Streams and consumers'), streams), h('div', {class: 'panel'}, msgs));
  let selected = null;
  const load = async () => {
    let r;
    try { r = await api('api/events'); } catch (e) { streams.replaceChildren(h('div', {class: 'error-text'}, e.message)); return; }
    if (!r.configured) { streams.replaceChildren(h('div', {class: 'muted'}, 'No event source is configured.')); return; }
    if (!r.streams.length) { streams.replaceChildren(h('div', {class: 'muted'}, 'No JetStream streams yet.')); return; }
    streams.replaceChildren(h('table', {},
      h('thead', {}, h('tr', {}, ['stream', 'subjects', 'messages', 'bytes', 'last message', 'consumers (lag · unacked · redelivered)'].map(t => h('th', {}, t)))),
      h('tbody', {}, r.streams.map(s => h('tr', {class: 'click stream', 'data-stream': s.name, onclick: () => { selected = s.name; loadMsgs(); }},
        h('td', {}, h('b', {}, s.name), ' ', s.dead_letter ? h('span', {class: 'badge err'}, 'dead letters') : ''),
        h('td', {class: 'mono'}, (s.subjects || []).join(', ')),
        h('td', {}, String(s.messages)), h('td', {}, String(s.bytes)),
        h('td', {class: 'mono'}, s.messages ? fmtTime(s.last_time) : '–'),
        h('td', {}, s.consumers.length ? s.consumers.map(c => h('div', {class: 'consumer', 'data-consumer': c.name},
          h('span', {class: 'mono'}, c.name), ' ', h('span', {class: 'badge ' + (c.num_pending > 0 ? 'warn' : 'ok')}, 'lag ' + c.num_pending),
          ' ', h('span', {class: 'badge'}, 'unacked ' + c.num_ack_pending), ' ', h('span', {class: 'badge'}, 'redelivered ' + c.num_redelivered),
          c.filter_subject ? h('span', {class: 'muted mono'}, ' ' + c.filter_subject) : '')) : h('span', {class: 'muted'}, 'none')))))));
    if (!selected) { selected = r.streams[0].name; }
    loadMsgs();
  };
  const loadMsgs = async () => {
    if (!selected) return;
    try {
      const list = await api('api/events/' + encodeURIComponent(selected) + '?n=50');
      const bySubject = {};
      for (const m of list) bySubject[m.subject] = (bySubject[m.subject] || 0) + 1;
      msgs.replaceChildren(h('h2', {}, 'Recent messages of ', selected, ' ',
        h('span', {class: 'muted'}, Object.entries(bySubject).map(([s, n]) => `${s}: ${n}`).join(' · '))),
      list.length ? h('table', {}, h('thead', {}, h('tr', {}, ['seq', 'time', 'subject', 'size', 'headers', 'data'].map(t => h('th', {}, t)))),
        h('tbody', {}, list.map(m => h('tr', {class: 'message'},
          h('td', {}, String(m.seq)), h('td', {class: 'mono'}, fmtTime(m.time)), h('td', {class: 'mono'}, m.subject), h('td', {}, String(m.size)),
          h('td', {class: 'mono'}, Object.entries(m.header || {}).map(([k, v]) => h('div', {}, k + ': ' + v.join(', '),
            k.toLowerCase() === 'traceparent' ? h('a', {href: '#/trace/' + (v[0].split('-')[1] || '')}, ' trace →') : ''))),
          h('td', {class: 'mono'}, m.data))))) : h('div', {class: 'muted'}, 'No messages.'));
    } catch (e) { msgs.replaceChildren(h('div', {class: 'error-text'}, e.message)); }
  };
  load();
  const timer = setInterval(load, 3000);
  state.cleanup.push(() => clearInterval(timer));
};

window.addEventListener('hashchange', route);
$('#notice').addEventListener('click', e => { e.currentTarget.hidden = true; });
checkSession();
startStatusStream();
route();
