// Candles: a node's bars for one symbol as a live candlestick chart with
// volume, from the tap WebSocket (/api/v1/jobs/{name}/tap/{port}). A bar
// re-emitted with update true replaces the candle of its start.
import { createChart, CandlestickSeries, HistogramSeries } from './vendor/lightweight-charts/lightweight-charts.standalone.production.mjs';
import { api, live, el, set, enc } from './api.js';

const MAX_BARS = 500;

function colours() {
  const css = getComputedStyle(document.documentElement);
  const v = (n) => css.getPropertyValue(n).trim();
  return { bg: v('--bg'), fg: v('--fg'), line: v('--line'), up: v('--up'), down: v('--down'), muted: v('--muted') };
}

export function mount(main, name, params) {
  const portSel = el('select', { id: 'port', 'aria-label': 'Node' });
  const symSel = el('select', { id: 'symbol', 'aria-label': 'Symbol' });
  const info = el('span', { class: 'muted', id: 'candleinfo', role: 'status', 'aria-live': 'polite' });
  const err = el('p', { class: 'error', role: 'alert' });
  const box = el('div', { class: 'chart', id: 'chart', role: 'img', 'aria-label': `Candles of ${name}` });
  main.append(el('h1', {}, `Candles · ${name}`),
    el('p', { class: 'controls' }, el('a', { href: `#/job/${enc(name)}` }, '← Job'),
      el('label', {}, 'Node ', portSel), el('label', {}, 'Symbol ', symSel), info), err, box);

  const c = colours();
  const chart = createChart(box, {
    autoSize: true,
    layout: { background: { color: c.bg }, textColor: c.fg, attributionLogo: true },
    grid: { vertLines: { color: c.line }, horzLines: { color: c.line } },
    timeScale: { timeVisible: true, secondsVisible: true, borderColor: c.line },
    rightPriceScale: { borderColor: c.line },
  });
  const candles = chart.addSeries(CandlestickSeries, { upColor: c.up, downColor: c.down, borderVisible: false, wickUpColor: c.up, wickDownColor: c.down });
  const volume = chart.addSeries(HistogramSeries, { priceScaleId: 'vol', priceFormat: { type: 'volume' }, lastValueVisible: false, priceLineVisible: false });
  chart.priceScale('vol').applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  const onTheme = () => {
    const c = colours();
    chart.applyOptions({ layout: { background: { color: c.bg }, textColor: c.fg }, grid: { vertLines: { color: c.line }, horzLines: { color: c.line } } });
    candles.applyOptions({ upColor: c.up, downColor: c.down, wickUpColor: c.up, wickDownColor: c.down });
  };
  window.addEventListener('mdp-theme', onTheme);

  let bars = []; // {time, open, high, low, close, volume}, by time
  let fitted = false;
  const toBar = (r) => ({ time: Date.parse(r.start || r.ts) / 1000, open: r.open, high: r.high, low: r.low, close: r.close, volume: r.volume });
  const vol = (b) => ({ time: b.time, value: b.volume, color: b.close >= b.open ? c.up + '80' : c.down + '80' });
  const setAll = () => {
    candles.setData(bars);
    volume.setData(bars.map(vol));
    if (!fitted && bars.length) { chart.timeScale().fitContent(); fitted = true; }
  };
  let updates = 0;
  const add = (recs, reset) => {
    if (reset) bars = [];
    let rebuild = reset;
    for (const r of recs) {
      const b = toBar(r);
      const last = bars[bars.length - 1];
      if (!last || b.time > last.time) {
        bars.push(b);
        if (!rebuild) { candles.update(b); volume.update(vol(b)); }
      } else if (b.time === last.time) {
        bars[bars.length - 1] = b;
        if (!rebuild) { candles.update(b); volume.update(vol(b)); }
      } else {
        // An update of an older bar: the chart cannot update behind its
        // last candle, so it is redrawn.
        const i = bars.findIndex((x) => x.time >= b.time);
        if (bars[i].time === b.time) bars[i] = b; else bars.splice(i, 0, b);
        rebuild = true;
      }
      updates++;
    }
    // The chart keeps between MAX_BARS and twice that: trimming redraws
    // every candle, so it happens once per MAX_BARS new ones.
    if (bars.length > 2 * MAX_BARS) { bars = bars.slice(bars.length - MAX_BARS); rebuild = true; }
    if (rebuild) setAll();
  };

  // Records arriving between two frames are drawn together, once.
  let queued = [], frame = 0;
  const queue = (recs) => {
    queued.push(...recs);
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; const q = queued; queued = []; add(q, false); status(); });
  };
  let closeWS = null, ended = false, skipped = 0;
  const status = () => set(info, `${bars.length} candle${bars.length === 1 ? '' : 's'}${skipped ? ` · ${skipped} records skipped (the tap fell behind)` : ''}${ended ? ' · run ended' : ''}`);
  const connect = () => {
    if (closeWS) closeWS();
    bars = []; queued = []; fitted = false; ended = false; setAll();
    const port = portSel.value, sym = symSel.value;
    if (!port) return;
    history.replaceState(null, '', `#/candles/${enc(name)}?port=${enc(port)}${sym ? '&symbol=' + enc(sym) : ''}`);
    closeWS = live(`/api/v1/jobs/${enc(name)}/tap/${enc(port)}?symbol=${enc(sym)}`, (m) => {
      skipped = m.skipped || 0;
      if (m.symbols) {
        const have = [...symSel.options].map((o) => o.value).join(',');
        if (have !== m.symbols.join(',')) {
          const cur = symSel.value;
          symSel.replaceChildren(...m.symbols.map((s) => el('option', { value: s }, s)));
          if (m.symbols.includes(cur)) symSel.value = cur;
          if (!cur && m.symbols.length) { symSel.value = m.symbols[0]; connect(); return; }
        }
      }
      if (m.type === 'snapshot') { queued = []; add(m.records || [], true); }
      if (m.type === 'records') queue(m.records || []);
      if (m.type === 'end') ended = true;
      status();
    }, (s) => window.mdpSetConn(s));
  };
  portSel.onchange = () => { symSel.replaceChildren(); connect(); };
  symSel.onchange = connect;

  api.taps(name).then((ports) => {
    const barPorts = ports.filter((p) => p.kind === 'bar');
    if (!barPorts.length) {
      err.textContent = ports.length ? 'No node of this job emits bars.' : 'The job has not run in this server yet: start it to see its bars.';
      return;
    }
    portSel.replaceChildren(...barPorts.map((p) => el('option', { value: p.port }, p.port)));
    if (params.get('port')) portSel.value = params.get('port');
    if (params.get('symbol')) symSel.replaceChildren(el('option', { value: params.get('symbol') }, params.get('symbol')));
    connect();
  }).catch((e) => { err.textContent = e.message; });

  // For the browser tests and anyone curious: what the chart holds.
  window.mdpCandles = { data: () => candles.data(), updates: () => updates };
  return () => {
    cancelAnimationFrame(frame);
    if (closeWS) closeWS();
    window.removeEventListener('mdp-theme', onTheme);
    chart.remove();
    delete window.mdpCandles;
  };
}
