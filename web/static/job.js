// Job: the graph in topological layers with live per-node figures, edges
// coloured by how full their queues are, per-node sparklines (rate and
// watermark lag), drops and errors by reason, the last error and the live
// log. Figures come from the job's status WebSocket.
import uPlot from './vendor/uplot/uPlot.esm.js';
import { api, live, el, set, fmtRate, fmtCount, fmtDuration, fmtLag, enc } from './api.js';

const SVG = 'http://www.w3.org/2000/svg';
const BOX_W = 210, BOX_H = 70, GAP_X = 70, GAP_Y = 24, PAD = 16;
const HISTORY = 600; // points kept per sparkline: 10 minutes at one a second

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

/** parseEdge splits "from.port -> to.port" using the known node ids. */
export function parseEdge(name, ids) {
  const [l, r] = name.split(' -> ');
  const side = (s) => {
    let best = null;
    for (const id of ids) if ((s === id || s.startsWith(id + '.')) && (!best || id.length > best.length)) best = id;
    return best ? { node: best, port: s.slice(best.length + 1) } : { node: s, port: '' };
  };
  return { from: side(l), to: side(r) };
}

/** layers puts each node one layer right of its furthest predecessor. */
export function layers(ids, edges) {
  const layer = new Map(ids.map((id) => [id, 0]));
  for (let pass = 0; pass < ids.length; pass++) {
    let moved = false;
    for (const e of edges) {
      const want = layer.get(e.from.node) + 1;
      if (layer.has(e.to.node) && layer.get(e.to.node) < want) { layer.set(e.to.node, want); moved = true; }
    }
    if (!moved) break;
  }
  return layer;
}

/** fillColour goes from green (empty queue) through amber to red (full). */
export function fillColour(fill) {
  const f = Math.max(0, Math.min(1, fill || 0));
  return `hsl(${Math.round(130 * (1 - f))} 70% 45%)`;
}

export function mount(main, name) {
  const title = el('h1', {}, el('span', {}, name), el('span', { class: 'state', id: 'jobstate' }));
  const links = el('p', { class: 'controls' },
    el('a', { href: '#/' }, '← Jobs'), el('a', { href: `#/candles/${enc(name)}` }, 'Candles'),
    el('a', { href: `#/edit/${enc(name)}`, 'data-write': true }, 'Edit job file'));
  const btnStart = el('button', { type: 'button', 'data-write': true }, 'Start');
  const btnStop = el('button', { type: 'button', 'data-write': true }, 'Stop');
  links.append(btnStart, btnStop);
  const summary = el('p', { class: 'muted', id: 'summary', role: 'status' }, 'Connecting…');
  const lastErr = el('p', { class: 'error', id: 'lasterror', role: 'alert' });
  const graphWrap = el('div', { class: 'graph-wrap' });
  const legend = el('div', { class: 'legend' }, 'Queue fill:',
    ...[[0, 'empty'], [0.5, 'half'], [0.9, 'nearly full']].map(([f, t]) =>
      el('span', {}, el('span', { class: 'swatch', style: `background:${fillColour(f)}` }), t)));
  const sparks = el('div', { class: 'sparks' });
  const dropsBody = el('tbody');
  const drops = el('table', { id: 'drops' }, el('thead', {}, el('tr', {},
    el('th', { scope: 'col' }, 'Node'), el('th', { scope: 'col' }, 'What'), el('th', { scope: 'col' }, 'Reason'), el('th', { scope: 'col', class: 'num' }, 'Count'))), dropsBody);
  const noDrops = el('p', { class: 'muted' }, 'No drops or errors.');
  const logs = el('pre', { class: 'logs panel', id: 'logs', tabindex: '0', 'aria-label': 'Job log' });
  main.append(title, links, summary, lastErr, el('h2', {}, 'Graph'), legend, graphWrap,
    el('div', { class: 'grid2' },
      el('section', {}, el('h2', {}, 'Drops and errors'), el('div', { class: 'table-wrap' }, drops), noDrops),
      el('section', {}, el('h2', {}, 'Log'), logs)),
    el('h2', {}, 'Rate and watermark lag, last 10 minutes'), sparks);

  const err = (e) => { lastErr.textContent = e.message; };
  btnStart.onclick = () => api.start(name).catch(err);
  btnStop.onclick = () => { btnStop.disabled = true; api.stop(name).catch(err); };

  let shape = ''; // node and edge names the drawn graph has
  let boxes = new Map(); // node id -> {texts}
  let edgeEls = new Map(); // edge name -> {path, label}
  const prev = new Map(); // node id -> {n, t}
  const series = new Map(); // node id -> {t: [], rate: [], lag: [], plot}

  const draw = (rs) => {
    const ids = rs.nodes.map((n) => n.id);
    const edges = rs.edges.map((e) => ({ ...parseEdge(e.name, ids), name: e.name }));
    const layer = layers(ids, edges);
    const cols = [];
    for (const n of rs.nodes) (cols[layer.get(n.id)] ||= []).push(n.id);
    const pos = new Map();
    cols.forEach((col, x) => col.forEach((id, y) => pos.set(id, { x: PAD + x * (BOX_W + GAP_X), y: PAD + y * (BOX_H + GAP_Y) })));
    const width = PAD * 2 + cols.length * (BOX_W + GAP_X) - GAP_X;
    const height = PAD * 2 + Math.max(...cols.map((c) => c.length)) * (BOX_H + GAP_Y) - GAP_Y;
    const root = svg('svg', { class: 'graph', id: 'graph', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img',
      'aria-label': `Graph of ${name}: ${ids.length} nodes, ${edges.length} edges` });
    root.append(svg('defs', {}, svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: 'context-stroke' }))));
    edgeEls = new Map();
    for (const e of edges) {
      const a = pos.get(e.from.node), b = pos.get(e.to.node);
      if (!a || !b) continue;
      const x1 = a.x + BOX_W, y1 = a.y + BOX_H / 2, x2 = b.x - 2, y2 = b.y + BOX_H / 2;
      const mx = (x1 + x2) / 2;
      const path = svg('path', { class: 'edge', d: `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`, 'marker-end': 'url(#arrow)', 'data-edge': e.name });
      const label = svg('text', { class: 'edgelabel', x: mx, y: (y1 + y2) / 2 - 6, 'text-anchor': 'middle' });
      const port = e.from.port ? svg('text', { class: 'edgelabel', x: x1 + 4, y: y1 - 6 }, e.from.port) : null;
      root.append(path, label);
      if (port) root.append(port);
      edgeEls.set(e.name, { path, label });
    }
    boxes = new Map();
    for (const n of rs.nodes) {
      const p = pos.get(n.id);
      const t1 = svg('text', { x: 10, y: 18, 'font-weight': 600 }, n.id);
      const t2 = svg('text', { class: 'sub', x: 10, y: 34 }, `${n.type}${n.instances > 1 ? ' ×' + n.instances : ''}`);
      const t3 = svg('text', { x: 10, y: 50 });
      const t4 = svg('text', { class: 'sub', x: 10, y: 64 });
      const g = svg('g', { class: 'node', transform: `translate(${p.x} ${p.y})`, 'data-node': n.id },
        svg('rect', { width: BOX_W, height: BOX_H, rx: 6 }), t1, t2, t3, t4);
      const tip = svg('title', {}, `${n.id} (${n.type}, ${n.kind}, parallelism ${n.instances})`);
      g.append(tip);
      root.append(g);
      boxes.set(n.id, { g, t3, t4 });
    }
    graphWrap.replaceChildren(root);
  };

  const theme = () => getComputedStyle(document.documentElement);
  const spark = (id) => {
    let s = series.get(id);
    if (s) return s;
    const box = el('div', { class: 'spark panel', 'data-spark': id }, el('h3', {}, id));
    sparks.append(box);
    // The server's samples of the last 10 minutes first, then this page's.
    const h = hist && hist.nodes[id];
    s = h ? { t: hist.time.slice(), rate: h.rate.slice(), lag: h.lag.slice(), box } : { t: [], rate: [], lag: [], box };
    const css = theme();
    s.plot = new uPlot({
      width: 300, height: 110, legend: { show: false }, cursor: { show: false },
      scales: { x: { time: true }, lag: { auto: true } },
      axes: [
        { stroke: css.getPropertyValue('--muted'), grid: { show: false }, size: 24, font: '10px system-ui' },
        { stroke: css.getPropertyValue('--muted'), size: 44, font: '10px system-ui', values: (u, vs) => vs.map(fmtRate) },
        { scale: 'lag', side: 1, stroke: css.getPropertyValue('--muted'), size: 44, grid: { show: false }, font: '10px system-ui', values: (u, vs) => vs.map((v) => v + 's') },
      ],
      series: [{}, { label: 'events/s', stroke: css.getPropertyValue('--accent'), width: 1.5 },
        { label: 'watermark lag (s)', scale: 'lag', stroke: css.getPropertyValue('--warn'), width: 1 }],
    }, [s.t, s.rate, s.lag], box);
    box.append(el('p', { class: 'muted', style: 'margin:2px 0 0;font-size:11px' }, 'events/s (blue), watermark lag in s (amber)'));
    const w = () => s.plot.setSize({ width: Math.max(200, box.clientWidth - 26), height: 110 });
    requestAnimationFrame(w);
    series.set(id, s);
    return s;
  };

  const onStatus = (j) => {
    const now = Date.now() / 1000;
    const st = title.querySelector('#jobstate');
    set(st, j.state);
    st.className = 'state state-' + j.state;
    btnStart.disabled = ['running', 'starting', 'stopping', 'backoff'].includes(j.state);
    btnStop.disabled = !['running', 'starting', 'backoff'].includes(j.state);
    set(summary, `${j.mode || ''} · up ${fmtDuration(j.uptime_seconds)} · in ${fmtRate(j.events_per_second)}/s · ` +
      `${fmtCount(j.events_in)} in, ${fmtCount(j.events_out)} out · watermark lag ${fmtLag(j.watermark_lag_seconds)} · ` +
      `feedback ${j.feedback_level || '–'} · restarts ${j.restarts}`);
    const rs = j.runtime;
    const errs = [];
    if (j.last_error) errs.push(j.last_error);
    for (const e of (rs && rs.errors) || []) if (!errs.includes(e)) errs.push(e);
    set(lastErr, errs.length ? 'Last error: ' + errs.join('\n') : '');
    if (!rs) { graphWrap.replaceChildren(el('p', { class: 'muted', style: 'padding:12px' }, 'The job has not run yet: start it to see its graph.')); shape = ''; return; }
    const sh = rs.nodes.map((n) => n.id).join(',') + '|' + rs.edges.map((e) => e.name).join(',');
    if (sh !== shape) { draw(rs); shape = sh; }
    const rows = [];
    for (const n of rs.nodes) {
      const count = n.kind === 'source' ? n.events_out : n.events_in;
      const p = prev.get(n.id);
      let rate = 0;
      if (p && now > p.t && count >= p.n) rate = (count - p.n) / (now - p.t);
      prev.set(n.id, { n: count, t: now });
      const b = boxes.get(n.id);
      if (b) {
        set(b.t3, `${n.kind === 'source' ? 'out' : 'in'} ${fmtRate(rate)}/s · ${n.state}`);
        set(b.t4, `queue ${n.queue_depth}/${n.queue_capacity} · lag ${fmtLag(n.watermark_lag_seconds)}`);
        b.g.classList.toggle('failed', n.state === 'failed');
      }
      const s = spark(n.id);
      s.t.push(now); s.rate.push(rate); s.lag.push(n.watermark_lag_seconds || 0);
      if (s.t.length > HISTORY) { s.t.shift(); s.rate.shift(); s.lag.shift(); }
      s.plot.setData([s.t, s.rate, s.lag]);
      for (const [k, v] of Object.entries(n.drops || {})) rows.push([n.id, 'drop', k, v]);
      for (const [k, v] of Object.entries(n.errors || {})) rows.push([n.id, 'error', k, v]);
    }
    for (const e of rs.edges) {
      const x = edgeEls.get(e.name);
      if (!x) continue;
      const fill = e.capacity ? e.depth / e.capacity : 0;
      x.path.setAttribute('stroke', fillColour(fill));
      x.path.style.color = fillColour(fill);
      set(x.label, `${e.depth}/${e.capacity}${e.dropped ? ' · ' + fmtCount(e.dropped) + ' dropped' : ''}`);
    }
    dropsBody.replaceChildren(...rows.map((r) => el('tr', {}, el('td', {}, r[0]), el('td', {}, r[1]), el('td', {}, r[2]), el('td', { class: 'num' }, fmtCount(r[3])))));
    drops.hidden = rows.length === 0;
    noDrops.hidden = rows.length > 0;
  };

  // The log: the last records at once, then what is new after each status.
  let seq = 0, fetching = false, lastFetch = 0;
  const pull = async () => {
    if (fetching || performance.now() - lastFetch < 900) return;
    fetching = true; lastFetch = performance.now();
    try {
      const recs = await api.logs(name, seq);
      if (recs && recs.length) {
        const atEnd = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 4;
        for (const r of recs) {
          seq = Math.max(seq, r.seq);
          const attrs = Object.entries(r.attrs || {}).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' ');
          logs.append(el('span', { class: r.level }, `${r.time.slice(11, 23)} ${r.level.padEnd(5)} ${r.msg} ${attrs}\n`));
        }
        while (logs.childNodes.length > 500) logs.firstChild.remove();
        if (atEnd) logs.scrollTop = logs.scrollHeight;
      }
    } catch (e) { /* the job may be gone: the status says so */ }
    fetching = false;
  };

  let hist = null, close = null, gone = false;
  api.history(name).catch(() => null).then((h) => {
    if (gone) return;
    hist = h;
    close = live(`/api/v1/jobs/${enc(name)}/ws`, (m) => {
      if (m.type === 'status' && m.job) { onStatus(m.job); pull(); }
      if (m.type === 'deleted') { summary.textContent = 'This job was deleted.'; }
    }, (s) => window.mdpSetConn(s));
  });
  pull();
  return () => { gone = true; if (close) close(); for (const s of series.values()) s.plot.destroy(); };
}
