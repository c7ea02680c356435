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
    else if (k === 'style' && typeof v === 'object') { // through the CSSOM, which the CSP allows
      for (const [p, x] of Object.entries(v)) { if (p.startsWith('--')) el.style.setProperty(p, x); else el.style[p] = x; }
    }
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

// fmtDur formats nanoseconds in human units with three significant digits: 812 ns,
// 4.21 µs, 103 ms, 1.50 s, 2 min 5 s.
function fmtDur(ns) {
  ns = Number(ns);
  if (!isFinite(ns)) return '–';
  const sign = ns < 0 ? '-' : '';
  ns = Math.abs(ns);
  const sig = v => v >= 100 ? Math.round(v).toString() : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  if (ns < 1e3) return sign + Math.round(ns) + ' ns';
  if (ns < 1e6) return sign + sig(ns / 1e3) + ' µs';
  if (ns < 1e9) return sign + sig(ns / 1e6) + ' ms';
  if (ns < 60e9) return sign + sig(ns / 1e9) + ' s';
  const s = Math.round(ns / 1e9);
  if (s < 3600) return sign + Math.floor(s / 60) + ' min' + (s % 60 ? ' ' + (s % 60) + ' s' : '');
  return sign + Math.floor(s / 3600) + ' h' + (Math.floor(s / 60) % 60 ? ' ' + (Math.floor(s / 60) % 60) + ' min' : '');
}

// DURATION_KEY matches the names of log attributes that hold a duration (duration,
// elapsed, latency, took, …_duration), with an optional unit suffix (duration_ms).
const DURATION_KEY = /^(?:.*[._-])?(duration|elapsed|latency|took|dur)(?:[._-]?(ns|us|µs|ms|s|sec|secs|seconds))?$/i;
const UNIT_NS = {ns: 1, us: 1e3, 'µs': 1e3, ms: 1e6, s: 1e9, sec: 1e9, secs: 1e9, seconds: 1e9, m: 60e9, min: 60e9, h: 3600e9};

// parseGoDuration reads a Go duration string ("103.47854ms", "1m2.5s") into nanoseconds,
// or returns NaN.
function parseGoDuration(v) {
  const str = String(v).trim();
  if (!/^-?(\d+(\.\d*)?(ns|us|µs|ms|s|m|h))+$/.test(str)) return NaN;
  let ns = 0;
  for (const [, n, , u] of str.replace(/^-/, '').matchAll(/(\d+(\.\d*)?)(ns|us|µs|ms|s|m|h)/g)) ns += Number(n) * UNIT_NS[u];
  return str.startsWith('-') ? -ns : ns;
}

// durationNs reads the value of a duration attribute named key into nanoseconds, or
// returns NaN: an integer is nanoseconds (slog's JSON encoding of a time.Duration), a
// fraction milliseconds, unless the key names its unit (duration_ms, elapsed_s); a string
// is a Go duration ("1.5ms") or a number; an object carries its unit as its key
// ({"ms": 103.4}) or in unit/value fields.
function durationNs(key, v) {
  const m = DURATION_KEY.exec(key);
  if (!m) return NaN;
  const unit = m[2] ? UNIT_NS[m[2].toLowerCase()] || UNIT_NS[m[2]] : 0;
  if (v !== null && typeof v === 'object') {
    if ('value' in v && 'unit' in v && UNIT_NS[v.unit]) return Number(v.value) * UNIT_NS[v.unit];
    for (const [u, n] of Object.entries(v)) if (UNIT_NS[u] && typeof n === 'number') return n * UNIT_NS[u];
    return NaN;
  }
  if (typeof v === 'string') {
    const g = parseGoDuration(v);
    if (!isNaN(g)) return g;
    if (!/^-?\d+(\.\d+)?$/.test(v.trim())) return NaN;
    v = Number(v);
  }
  if (typeof v !== 'number' || !isFinite(v)) return NaN;
  if (unit) return v * unit;
  return Number.isInteger(v) ? v : v * 1e6;
}

// fmtAttr formats a log attribute's value for display: durations in human units.
function fmtAttr(key, v) {
  const ns = durationNs(key, v);
  if (!isNaN(ns)) return fmtDur(ns);
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

// humanizeText rewrites key=value durations in a plain-text log line (logfmt, slog's text
// handler) in human units.
function humanizeText(text) {
  return text.replace(/(^|\s)([\w.-]+)=("?)([-\d.]+(?:ns|us|µs|ms|s|m|h)?(?:[\d.]+(?:ns|us|µs|ms|s|m|h))*)\3(?=\s|$)/g,
    (all, pre, k, q, v) => { const ns = durationNs(k, v); return isNaN(ns) ? all : pre + k + '=' + fmtDur(ns); });
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
          h('div', {class: 'muted'}, `${fmtNum(red.rate)} req/s · ${fmtNum(red.err, 2)} err/s · p99 ${red.p99 ? fmtDur(red.p99 * 1e9) : '–'}`)) : null,
        h('td', {class: 'mono'}, inst.id),
        h('td', {}, health, inst.last_exit ? h('div', {class: 'muted', title: inst.last_exit}, 'last exit: ' + inst.last_exit) : ''),
        h('td', {}, String(inst.pid || '–')),
        h('td', {}, String(inst.restarts)),
        h('td', {}, fmtSecs(inst.uptime_s)),
        h('td', {class: 'mono'}, Object.entries(inst.addrs || {}).sort().map(([k, v]) => h('div', {}, k + ' ', k === 'http' ? h('span', {}, v) : v))),
        h('td', {}, inst.state === 'running' ? h('button', {class: 'restart', 'data-id': inst.id,
          title: 'a new process starts beside this one and takes over once ready: no request fails',
          onclick: () => restartInstance(inst.id)}, 'restart') : '', ' ',
          h('button', {class: 'danger kill', 'data-id': inst.id,
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

async function restartInstance(id) {
  try {
    await api('api/instances/' + encodeURIComponent(id) + '/restart', {method: 'POST'});
    notice(`restarting ${id}: a new process takes over once ready`, false);
  } catch (e) { notice(`${id}: ${e.message}`, true); }
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

// renderArch draws services and subjects in columns by call depth (longest path), with
// arrows. The layout keeps labels and edges clear of the boxes: an edge that spans several
// columns passes through a free slot of each column between (a virtual node, as in a
// layered graph drawing), the rows of each column are ordered by their neighbours'
// positions to limit crossings, the edges leaving or entering a box spread over its side,
// each box is as wide as its column's longest name, and a count label is placed where it
// overlaps no box and no other label. Edges that go back (cycles) run below the graph.
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
  const add = (name, kind) => { if (!nodes.has(name)) nodes.set(name, {name, kind, depth: 0, outs: [], ins: []}); };
  services.forEach(s => add(s, 'service'));
  for (const e of edges) {
    add(e.from, e.kind === 'consume' ? 'subject' : 'service');
    add(e.to, e.kind === 'publish' ? 'subject' : 'service');
  }
  const drawn = edges.filter(e => e.from !== e.to);
  // depth: longest path from a node without incoming edges (bounded against cycles)
  for (let i = 0; i < nodes.size; i++) {
    for (const e of drawn) {
      const a = nodes.get(e.from), b = nodes.get(e.to);
      if (b.depth < a.depth + 1 && a.depth + 1 < nodes.size) b.depth = a.depth + 1;
    }
  }
  const ncols = Math.max(...[...nodes.values()].map(n => n.depth)) + 1;
  const cols = Array.from({length: ncols}, () => []);
  for (const n of nodes.values()) cols[n.depth].push(n);
  // Forward edges get a virtual node in every column they cross.
  const chains = [];
  for (const e of drawn) {
    const a = nodes.get(e.from), b = nodes.get(e.to);
    if (b.depth <= a.depth) { chains.push({e, a, b, back: true}); continue; }
    const pts = [a];
    for (let d = a.depth + 1; d < b.depth; d++) {
      const v = {name: '', virtual: true, depth: d, outs: [], ins: []};
      cols[d].push(v);
      pts.push(v);
    }
    pts.push(b);
    for (let i = 0; i + 1 < pts.length; i++) { pts[i].outs.push(pts[i + 1]); pts[i + 1].ins.push(pts[i]); }
    chains.push({e, a, b, pts});
  }
  // Order each column by the mean row of its neighbours, sweeping both ways.
  cols.forEach(c => c.sort((x, y) => (x.virtual - y.virtual) || (x.kind === y.kind ? 0 : x.kind === 'service' ? -1 : 1) || x.name.localeCompare(y.name)));
  const rowOf = () => { for (const c of cols) c.forEach((n, i) => { n.row = i; }); };
  rowOf();
  const bary = (n, side) => { const nb = n[side]; return nb.length ? nb.reduce((t, m) => t + m.row, 0) / nb.length : n.row; };
  for (let sweep = 0; sweep < 6; sweep++) {
    const down = sweep % 2 === 0;
    const order = down ? cols.slice(1) : cols.slice(0, -1).reverse();
    for (const c of order) {
      const b = new Map(c.map(n => [n, bary(n, down ? 'ins' : 'outs')]));
      c.sort((x, y) => b.get(x) - b.get(y) || x.row - y.row);
      c.forEach((n, i) => { n.row = i; });
    }
  }
  // Sizes: a box fits its name (measured in the page's font), at most 260 px.
  const measure = document.createElement('canvas').getContext('2d');
  measure.font = '12px system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';
  const labelOf = n => (n.kind === 'subject' ? '⇄ ' : '') + n.name;
  const MAXW = 260, H = 34, GX = 110, GY = 26, VH = 12, PAD = 20;
  const colW = cols.map(c => Math.min(MAXW, Math.max(110, ...c.filter(n => !n.virtual).map(n => measure.measureText(labelOf(n)).width + 26))));
  const colX = [];
  colW.reduce((x, w, i) => { colX[i] = x; return x + w + GX; }, PAD);
  const colH = cols.map(c => c.reduce((t, n) => t + (n.virtual ? VH : H) + GY, -GY));
  const maxH = Math.max(H, ...colH);
  cols.forEach((c, ci) => {
    let y = PAD + (maxH - colH[ci]) / 2;
    for (const n of c) { n.x = colX[ci]; n.w = colW[ci]; n.h = n.virtual ? VH : H; n.y = y; y += n.h + GY; }
  });
  const backs = chains.filter(c => c.back);
  const width = Math.max(600, colX[ncols - 1] + colW[ncols - 1] + PAD);
  const height = PAD * 2 + maxH + backs.length * 14 + (backs.length ? 10 : 0);
  // Ports: the edges that leave (enter) a box spread over its right (left) side, in the
  // order of the other end's height, so that they do not cross at the box.
  const portY = (n, list, other) => {
    if (n.virtual) return n.y + n.h / 2;
    const sorted = list.slice().sort((p, q) => (p.y + p.h / 2) - (q.y + q.h / 2));
    const i = sorted.indexOf(other);
    return n.y + n.h * (i + 1) / (sorted.length + 1);
  };
  const NS = 'http://www.w3.org/2000/svg';
  const s = (tag, attrs, ...kids) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    for (const kid of kids) e.append(kid);
    return e;
  };
  const svg = s('svg', {viewBox: `0 0 ${width} ${height}`, height, width});
  svg.append(s('defs', {}, s('marker', {id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse'},
    s('path', {d: 'M 0 0 L 10 5 L 0 10 z', fill: '#7d8aa3'}))));
  const boxes = [...nodes.values()].map(n => ({x: n.x, y: n.y, w: n.w, h: n.h}));
  const placed = [];
  const overlaps = (r, list) => list.some(q => r.x < q.x + q.w && q.x < r.x + r.w && r.y < q.y + q.h && q.y < r.y + r.h);
  const labels = [];
  let lane = PAD + maxH + 14;
  for (const c of chains) {
    const {e} = c;
    let d, segs = [];
    if (c.back) {
      const x1 = c.a.x + c.a.w, y1 = c.a.y + c.a.h / 2, x2 = c.b.x, y2 = c.b.y + c.b.h / 2;
      const gx1 = x1 + GX / 3, gx2 = x2 - GX / 3;
      d = `M ${x1} ${y1} L ${gx1} ${y1} L ${gx1} ${lane} L ${gx2} ${lane} L ${gx2} ${y2} L ${x2} ${y2}`;
      segs.push({x1: gx1, y1: lane, x2: gx2, y2: lane, line: true});
      lane += 14;
    } else {
      const pts = c.pts;
      const parts = [];
      for (let i = 0; i + 1 < pts.length; i++) {
        const p = pts[i], q = pts[i + 1];
        const x1 = p.x + p.w, y1 = portY(p, p.outs, q), x2 = q.x, y2 = portY(q, q.ins, p);
        if (i === 0) parts.push(`M ${x1} ${y1}`);
        else parts.push(`L ${x1} ${y1}`); // across the virtual node's free slot
        const mx = (x1 + x2) / 2;
        parts.push(`C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`);
        segs.push({x1, y1, x2, y2});
      }
      d = parts.join(' ');
    }
    svg.append(s('path', {class: 'edge ' + e.kind, d, 'marker-end': 'url(#arrow)', 'data-from': e.from, 'data-to': e.to, 'data-kind': e.kind}));
    labels.push({e, segs});
  }
  // Count labels: the first spot along the edge's curves that overlaps no box or label.
  const bez = (g, t) => { // a point of the curve M x1 y1 C mx y1, mx y2, x2 y2
    if (g.line) return [g.x1 + (g.x2 - g.x1) * t, g.y1];
    const mx = (g.x1 + g.x2) / 2, u = 1 - t;
    return [u * u * u * g.x1 + 3 * u * u * t * mx + 3 * u * t * t * mx + t * t * t * g.x2,
      u * u * u * g.y1 + 3 * u * u * t * g.y1 + 3 * u * t * t * g.y2 + t * t * t * g.y2];
  };
  for (const {e, segs} of labels) {
    const text = String(e.count || '');
    const tw = Math.max(6, measure.measureText(text).width * 10 / 12) + 4, th = 12;
    let best = null;
    for (const g of segs) {
      for (const t of [0.5, 0.35, 0.65, 0.2, 0.8, 0.1, 0.9]) {
        const [px, py] = bez(g, t);
        for (const dy of [-8, 10, -18, 20]) {
          const r = {x: px - tw / 2, y: py + dy - th + 2, w: tw, h: th};
          if (!overlaps(r, boxes) && !overlaps(r, placed)) { best = {r, px, py: py + dy}; break; }
        }
        if (best) break;
      }
      if (best) break;
    }
    if (!best) { const [px, py] = bez(segs[0], 0.5); best = {r: {x: px - tw / 2, y: py - 18, w: tw, h: th}, px, py: py - 8}; }
    placed.push(best.r);
    const t = s('text', {class: 'elabel', x: best.px, y: best.py, 'text-anchor': 'middle', 'data-edge': e.from + '>' + e.to + '>' + e.kind});
    t.textContent = text; // 0 (empty): known from the event source's consumers, no traffic traced
    svg.append(t);
  }
  for (const n of nodes.values()) {
    let text = labelOf(n);
    if (measure.measureText(text).width + 26 > n.w) { // too long for the widest box: cut in the middle
      while (text.length > 4 && measure.measureText(text + '…').width + 26 > n.w) text = text.slice(0, Math.ceil(text.length / 2) - 1) + text.slice(Math.ceil(text.length / 2));
      text = text.slice(0, Math.ceil(text.length / 2)) + '…' + text.slice(Math.ceil(text.length / 2));
    }
    const label = s('text', {x: n.x + 12, y: n.y + H / 2 + 4});
    label.textContent = text;
    const g = s('g', {class: 'node ' + n.kind, 'data-name': n.name},
      s('title', {}, labelOf(n)),
      s('rect', {class: 'box', x: n.x, y: n.y, width: n.w, height: H, rx: 6}),
      s('rect', {x: n.x + 1, y: n.y + 4, width: 5, height: H - 8, rx: 2, fill: n.kind === 'service' ? svcColor(n.name) : '#d9b25c'}),
      label);
    svg.append(g);
  }
  el.replaceChildren(svg);
}

// ---- Metrics page --------------------------------------------------------------------

pages.metrics = function (main, _, params) {
  const sel = h('select', {id: 'metric-service', name: 'service'}, h('option', {value: ''}, 'all services'));
  const idle = h('input', {type: 'checkbox', id: 'metric-idle', name: 'idle'});
  const focus = h('span', {id: 'metric-focus'});
  const root = h('div', {id: 'charts'});
  const view = {service: params.get('service') || '', series: params.get('series') || '', idle: params.get('idle') === '1'};
  if (view.service) sel.append(h('option', {value: view.service}, view.service));
  sel.value = view.service;
  idle.checked = view.idle;
  main.append(h('div', {class: 'panel'}, h('h2', {}, 'RED metrics per endpoint ',
    h('span', {class: 'muted'}, '(last 5 minutes, scraped every 2 s from each instance\'s /metrics; summed over instances; endpoints with traffic first)')),
  h('form', {class: 'filters', onsubmit: e => e.preventDefault()}, h('label', {}, 'service', sel),
    h('label', {title: 'endpoints that served no request in the last 5 minutes'}, idle, 'show idle endpoints'), focus)), root);
  // The view is kept in the URL (#/metrics?service=…&series=…&idle=1) so that it can be linked.
  const apply = () => {
    view.service = sel.value; view.idle = idle.checked;
    const q = new URLSearchParams();
    if (view.service) q.set('service', view.service);
    if (view.series) q.set('series', view.series);
    if (view.idle) q.set('idle', '1');
    history.replaceState(null, '', '#/metrics' + (q.toString() ? '?' + q : ''));
    if (state.status) drawMetrics(root, state.status, view);
  };
  sel.addEventListener('change', apply);
  idle.addEventListener('change', apply);
  onStatus(st => {
    const have = new Set($$('option', sel).map(o => o.value));
    for (const s of st.system.services) if (!have.has(s.name)) sel.append(h('option', {value: s.name}, s.name));
    focus.replaceChildren(view.series ? h('span', {}, 'one endpoint: ', h('b', {class: 'mono'}, view.series), ' ',
      h('a', {href: '#/metrics' + (view.service ? '?service=' + encodeURIComponent(view.service) : ''), id: 'metric-all'}, 'all endpoints')) : '');
    drawMetrics(root, st, view);
  });
};

function seriesId(s) { return `${s.service}/${s.transport}/${s.method}`; }

// seriesTraffic is the number of requests a series saw in its window (rate × 2 s summed).
function seriesTraffic(s) {
  let n = 0;
  for (const p of s.points) n += (p.rate || 0) + (p.error_rate || 0);
  return n;
}

// drawMetrics draws the RED charts grouped per service: services with traffic first, and
// in each service the endpoints with traffic, then (view.idle) the idle ones, which are
// otherwise only named. Chart boxes are kept across redraws.
function drawMetrics(root, st, view) {
  const series = st.metrics.filter(s => (!view.service || s.service === view.service) && (!view.series || seriesId(s) === view.series));
  if (!series.length) {
    root.replaceChildren(h('div', {class: 'panel muted empty'}, view.series ? `No series ${view.series}.`
      : 'No RED series yet: metrics appear after two scrapes of an endpoint that served requests.'));
    return;
  }
  const groups = new Map();
  for (const s of series) {
    if (!groups.has(s.service)) groups.set(s.service, {active: [], idle: [], total: 0});
    const g = groups.get(s.service), n = seriesTraffic(s);
    g.total += n;
    (n > 0 || view.series ? g.active : g.idle).push(s);
  }
  const order = [...groups.entries()].sort(([a, ga], [b, gb]) => (gb.active.length > 0) - (ga.active.length > 0) || a.localeCompare(b));
  const old = new Map($$('.chartbox', root).map(b => [b.dataset.series, b]));
  const sections = order.map(([svc, g]) => {
    const shown = view.idle ? [...g.active, ...g.idle] : g.active;
    const boxes = shown.map(s => {
      const box = old.get(seriesId(s)) || chartBox(s);
      box.classList.toggle('idle', !g.active.includes(s));
      drawSeries(box, s);
      return box;
    });
    const idleNote = !view.idle && g.idle.length ? h('div', {class: 'muted idle-list'}, `${g.idle.length} endpoint${g.idle.length > 1 ? 's' : ''} without traffic: `,
      g.idle.flatMap((s, i) => [i ? ', ' : '', h('a', {href: '#/metrics?series=' + encodeURIComponent(seriesId(s)), title: seriesId(s)}, s.method + ' (' + s.transport + ')')])) : '';
    // A service with few charts takes only their width, so that several fit in a row.
    return h('section', {class: 'panel svc-metrics' + (boxes.length > 3 ? ' wide' : ''), 'data-service': svc,
      style: {'--n': String(Math.max(1, Math.min(boxes.length, 3)))}},
      h('h2', {}, h('span', {style: {color: svcColor(svc)}}, svc), ' ',
        h('span', {class: 'muted'}, g.active.length ? `${g.active.length} endpoint${g.active.length > 1 ? 's' : ''} with traffic` : 'no traffic in the last 5 minutes')),
      boxes.length ? h('div', {class: 'grid'}, boxes) : '', idleNote);
  });
  root.replaceChildren(...sections);
}

function chartBox(s) {
  const id = seriesId(s);
  return h('div', {class: 'chartbox', 'data-series': id},
    h('h3', {}, h('a', {href: '#/metrics?series=' + encodeURIComponent(id), title: 'this endpoint alone (a link to share)'},
      h('span', {style: {color: svcColor(s.service)}}, s.service), ' ', s.method), ' ', h('span', {class: 'badge'}, s.transport)),
    h('div', {class: 'muted'}, 'requests/s'), h('canvas', {class: 'rate'}),
    h('div', {class: 'muted'}, 'errors/s by kind'), h('canvas', {class: 'errors'}), h('div', {class: 'legend errlegend'}),
    h('div', {class: 'muted'}, 'latency (ms)'), h('canvas', {class: 'latency'}),
    h('div', {class: 'legend'}, [['p50', '#1f9d55'], ['p95', '#e0702b'], ['p99', '#d64545']].map(([l, c]) => h('span', {}, h('i', {style: {background: c}}), l))));
}

function drawSeries(box, s) {
  const t = s.points.map(p => new Date(p.t).getTime());
  drawChart($('canvas.rate', box), t, [{color: '#2f6fde', values: s.points.map(p => p.rate), fill: true}], 'req/s');
  const kinds = [...new Set(s.points.flatMap(p => Object.keys(p.error_kinds || {})))].sort();
  // A request its client cancelled is no failure of the service: grey, not red.
  let ci = 0;
  const errSeries = kinds.map(k => ({label: k, color: k === 'canceled' ? '#9aa1ad' : ERR_PALETTE[ci++ % ERR_PALETTE.length], values: s.points.map(p => (p.error_kinds || {})[k] || 0)}));
  if (!errSeries.length) errSeries.push({label: 'errors', color: '#d64545', values: s.points.map(p => p.error_rate)});
  drawChart($('canvas.errors', box), t, errSeries, 'err/s');
  $('.errlegend', box).replaceChildren(...errSeries.map(e => h('span', {}, h('i', {style: {background: e.color}}), e.label)));
  drawChart($('canvas.latency', box), t, [
    {color: '#1f9d55', values: s.points.map(p => p.p50 * 1000)},
    {color: '#e0702b', values: s.points.map(p => p.p95 * 1000)},
    {color: '#d64545', values: s.points.map(p => p.p99 * 1000)}], 'ms');
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
      h('td', {}, t.error ? h('span', {class: 'badge err'}, 'error')
        : t.canceled ? h('span', {class: 'badge cancel', title: 'a request of this trace was cancelled by its client'}, 'cancelled')
          : h('span', {class: 'badge ok'}, 'ok')),
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
      h('b', {}, s.service), ' ', s.name, ' ', h('span', {class: 'muted'}, dbSystem(s) || s.kind),
      s._orphan ? h('span', {class: 'badge warn', title: 'parent span not received'}, '?') : '',
      s.error ? h('span', {class: 'badge err'}, 'error') : '',
      s.canceled ? h('span', {class: 'badge cancel', title: 'cancelled by its client: not an error of the service'}, 'cancelled') : ''),
    h('div', {class: 'track'}, h('div', {class: 'bar' + (s.error ? ' error' : '') + (s.canceled ? ' canceled' : ''), style: {
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
      sum.error ? h('span', {class: 'badge err'}, 'error') : '', sum.canceled ? h('span', {class: 'badge cancel'}, 'cancelled') : '', ' ',
      h('a', {href: '#/logs?trace_id=' + t.id, id: 'trace-logs-link'}, `${t.logs} log lines of this trace →`)),
    h('div', {class: 'wf', id: 'waterfall', style: {marginTop: '10px'}},
      h('div', {class: 'row head'}, h('div', {}, 'service / span'), h('div', {class: 'track'}, '0 … ' + fmtDur(total)), h('div', {class: 'dur'}, 'duration')),
      rows),
    detail);
}

// dbSystem names the database of a span of a store statement (its kind is client).
function dbSystem(s) { return s.attrs && (s.attrs['db.system.name'] || s.attrs['db.system']) || ''; }

// spanNs returns a span's duration in nanoseconds from its RFC 3339 times (a Date holds
// milliseconds only: the digits below are added separately).
function spanNs(s) {
  const sub = x => Number(((String(x).match(/\.(\d+)/) || [])[1] || '').padEnd(9, '0').slice(3, 9));
  return (new Date(s.end).getTime() - new Date(s.start).getTime()) * 1e6 + sub(s.end) - sub(s.start);
}

// BODY_ATTR names the span attributes that carry a request's or a response's body (a dev
// opt-in of the services); the span's detail shows them as blocks, indented when JSON.
const BODY_ATTR = /(^|\.)(request|response)\.body(\.content)?$/;

function showSpan(el, s, t) {
  const all = Object.entries(s.attrs || {}).sort();
  const attrs = all.filter(([k]) => !BODY_ATTR.test(k));
  const bodies = all.filter(([k]) => BODY_ATTR.test(k)).map(([k, v]) => {
    let pretty = v;
    try { pretty = JSON.stringify(JSON.parse(v), null, 2); } catch (e) { /* not JSON */ }
    return h('div', {class: 'span-body', 'data-attr': k}, h('div', {class: 'muted mono'}, k), h('pre', {}, pretty));
  });
  const start = new Date(s.start), end = new Date(s.end);
  el.replaceChildren(
    h('h3', {}, s.service, ' · ', s.name),
    s.error ? h('div', {class: 'error-text'}, 'error: ' + (s.status || '(no message)')) : '',
    s.canceled ? h('div', {class: 'muted'}, 'cancelled by its client (the caller went away or gave up): not an error of ' + s.service + (s.status ? ' — ' + s.status : '')) : '',
    h('table', {class: 'kv'}, h('tbody', {},
      [['span id', s.span_id], ['parent id', s.parent_id || '(root)'], ['kind', s.kind], ['start', start.toISOString()], ['end', end.toISOString()],
        ['status', s.error ? 'error' : s.canceled ? 'cancelled' : 'ok'], ['duration', fmtDur(spanNs(s))], ...attrs].map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, v))))),
    ...bodies,
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
    kv.push(k + '=' + fmtAttr(k, v));
  }
  return h('div', {class: 'logline', 'data-trace-id': l.trace_id || '', 'data-service': l.service, 'data-seq': l.seq},
    h('span', {class: 'muted'}, fmtTime(l.time)),
    h('span', {style: {color: svcColor(l.service)}}, l.instance || l.service),
    h('span', {class: 'lv-' + (l.level || '')}, l.level || l.stream),
    h('span', {class: 'text'}, attrs ? l.msg || '' : humanizeText(l.raw), ' ', h('span', {class: 'kvs'}, kv.join(' ')), ' ',
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
        h('span', {class: 'muted sum'}, ep.guessed ? ` ${ep.name}` + (ep.transport ? ` (${ep.transport})` : '') : ` ${firstSentence(ep.summary) || ep.name || ''}`));
      item.addEventListener('click', () => {
        $$('div.sel', left).forEach(x => x.classList.remove('sel'));
        item.classList.add('sel');
        callForm(right, a, ep);
      });
      left.append(item);
    }
  }
};

// normText is text with its white space collapsed and without a final period.
function normText(t) { return (t || '').split(/\s+/).filter(Boolean).join(' ').replace(/\.$/, ''); }
// firstSentence is the first sentence of a summary, for the endpoint list.
function firstSentence(t) { const m = /^(.*?[.;:—])(\s|$)/.exec(t || ''); return m ? m[1].replace(/[.;:—]$/, '') : t || ''; }

// describe shows an endpoint's summary and description once: a description that starts
// with the summary (as generated documents have it) is shown alone.
function describe(ep) {
  const sum = normText(ep.summary), desc = normText(ep.description);
  const parts = [];
  const paras = (t, cls) => t.split(/\n\s*\n/).map(p => h('p', {class: cls}, p));
  if (desc && sum && desc.startsWith(sum)) parts.push(...paras(ep.description, 'desc'));
  else {
    if (sum) parts.push(...paras(ep.summary, 'desc'));
    if (desc && desc !== sum) parts.push(...paras(ep.description, 'desc muted'));
  }
  return h('div', {id: 'ep-doc'}, parts);
}

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
          h('span', {class: 'muted'}, `${fmtDur((performance.now() - t0) * 1e6)} · ${r.headers.get('X-Svckit-Instance') || ''}`)),
        h('pre', {}, [...r.headers.entries()].map(([k, v]) => k + ': ' + v).join('\n')),
        h('pre', {id: 'call-body', style: {marginTop: '6px'}}, pretty));
    } catch (err) { out.replaceChildren(h('div', {class: 'error-text'}, err.message)); }
  };
  el.replaceChildren(
    h('h2', {}, a.service, ' · ', ep.name || ep.path),
    describe(ep),
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

// oneLine is a payload's first 160 characters on one line, for the compact list.
function oneLine(t) {
  const one = String(t || '').replace(/\s+/g, ' ');
  return one.length > 160 ? one.slice(0, 160) + '…' : one;
}
function fmtBytes(n) { return n < 1024 ? n + ' B' : n < 1 << 20 ? (n / 1024).toFixed(1) + ' KB' : (n / (1 << 20)).toFixed(1) + ' MB'; }

// messageDetail shows a message's headers and its payload, as indented JSON if it is JSON.
function messageDetail(m) {
  let pretty = m.data;
  try { pretty = JSON.stringify(JSON.parse(m.data), null, 2); } catch (e) { /* not JSON */ }
  const hdrs = Object.entries(m.header || {}).sort();
  return h('div', {class: 'msg-body'},
    m.wire_subject ? h('div', {class: 'muted mono'}, 'subject as stored: ' + m.wire_subject) : '',
    hdrs.length ? h('table', {class: 'kv'}, h('tbody', {}, hdrs.map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, v.join(', ')))))) : '',
    h('pre', {class: 'payload-full'}, pretty),
    m.size > 4096 ? h('div', {class: 'muted'}, `first 4 KB of ${fmtBytes(m.size)}`) : '');
}

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
  const open = new Set(); // expanded messages, kept across refreshes: "stream/seq"
  const loadMsgs = async () => {
    if (!selected) return;
    try {
      const list = await api('api/events/' + encodeURIComponent(selected) + '?n=50');
      const bySubject = {};
      for (const m of list) bySubject[m.subject] = (bySubject[m.subject] || 0) + 1;
      const rows = [];
      for (const m of list) {
        const key = selected + '/' + m.seq;
        const tp = Object.entries(m.header || {}).find(([k]) => k.toLowerCase() === 'traceparent');
        const traceId = tp ? (tp[1][0].split('-')[1] || '') : '';
        const detail = h('tr', {class: 'message-detail', hidden: !open.has(key)}, h('td', {colspan: 6}, messageDetail(m)));
        const row = h('tr', {class: 'message click', 'data-seq': m.seq, 'aria-expanded': open.has(key) ? 'true' : 'false', title: 'show headers and payload'},
          h('td', {class: 'mono'}, h('span', {class: 'caret'}, open.has(key) ? '▾' : '▸'), ' ', String(m.seq)),
          h('td', {class: 'mono'}, fmtTime(m.time)),
          h('td', {class: 'mono', title: m.wire_subject ? 'stored as ' + m.wire_subject : null}, m.subject),
          h('td', {class: 'num'}, fmtBytes(m.size)),
          h('td', {}, traceId ? h('a', {href: '#/trace/' + traceId, onclick: e => e.stopPropagation()}, 'trace →') : ''),
          h('td', {class: 'mono payload'}, oneLine(m.data)));
        row.addEventListener('click', () => {
          const show = detail.hidden;
          detail.hidden = !show;
          if (show) open.add(key); else open.delete(key);
          row.setAttribute('aria-expanded', show ? 'true' : 'false');
          $('.caret', row).textContent = show ? '▾' : '▸';
        });
        rows.push(row, detail);
      }
      msgs.replaceChildren(h('h2', {}, 'Recent messages of ', selected, ' ',
        h('span', {class: 'muted'}, Object.entries(bySubject).map(([s, n]) => `${s}: ${n}`).join(' · '))),
      list.length ? h('table', {class: 'messages compact'}, h('thead', {}, h('tr', {}, ['seq', 'time', 'subject', 'size', 'trace', 'payload'].map(t => h('th', {}, t)))),
        h('tbody', {}, rows)) : h('div', {class: 'muted'}, 'No messages.'));
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
