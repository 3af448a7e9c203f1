// Jobs: every job, live over the status WebSocket (/api/v1/ws), with
// start, stop and delete buttons.
import { api, live, el, set, fmtRate, fmtCount, fmtDuration, fmtLag, enc } from './api.js';

const columns = [
  ['Job', ''], ['State', ''], ['Mode', 'wide'], ['Uptime', 'num'], ['In /s', 'num'], ['Out /s', 'num'],
  ['Watermark lag', 'num wide'], ['Errors', 'num'], ['Feedback', 'wide'], ['Restarts', 'num wide'], ['Actions', 'write'],
];

export function mount(main) {
  const status = el('p', { class: 'muted', role: 'status', 'aria-live': 'polite' }, 'Connecting…');
  const tbody = el('tbody');
  const table = el('table', { id: 'jobs', 'aria-label': 'Jobs' },
    el('thead', {}, el('tr', {}, ...columns.map(([t, c]) => el('th', { class: c, scope: 'col', 'data-write': c === 'write' || undefined }, t)))), tbody);
  const empty = el('p', { class: 'muted', hidden: true }, 'No jobs yet. ', el('a', { href: '#/edit', 'data-write': true }, 'Submit one'), '.');
  const err = el('p', { class: 'error', role: 'alert' });
  main.append(el('h1', {}, 'Jobs'), status, err, el('div', { class: 'table-wrap' }, table), empty);

  const rows = new Map(); // name -> {tr, cells, last}
  const act = async (name, what, btn) => {
    btn.disabled = true;
    err.textContent = '';
    try {
      if (what === 'start') await api.start(name);
      if (what === 'stop') await api.stop(name);
      if (what === 'delete') {
        if (btn.dataset.confirm !== '1') {
          btn.dataset.confirm = '1';
          btn.textContent = 'Confirm delete';
          btn.disabled = false;
          setTimeout(() => { btn.dataset.confirm = ''; btn.textContent = 'Delete'; }, 4000);
          return;
        }
        await api.remove(name);
      }
    } catch (e) {
      err.textContent = `${what} ${name}: ${e.message}`;
    }
    btn.disabled = false;
  };

  const row = (name) => {
    let r = rows.get(name);
    if (r) return r;
    const cells = columns.map(([, c]) => el('td', { class: c, 'data-write': c === 'write' || undefined }));
    const start = el('button', { type: 'button', 'data-act': 'start', 'aria-label': `Start ${name}` }, 'Start');
    const stop = el('button', { type: 'button', 'data-act': 'stop', 'aria-label': `Stop ${name}` }, 'Stop');
    const del = el('button', { type: 'button', class: 'danger', 'data-act': 'delete', 'aria-label': `Delete ${name}` }, 'Delete');
    start.onclick = () => act(name, 'start', start);
    stop.onclick = () => act(name, 'stop', stop);
    del.onclick = () => act(name, 'delete', del);
    cells[0].append(el('a', { href: `#/job/${enc(name)}` }, name));
    cells[1].append(el('span', { class: 'state' }));
    cells[10].classList.add('actions');
    cells[10].append(start, stop, del);
    const tr = el('tr', { 'data-job': name }, ...cells);
    r = { tr, cells, start, stop, del, outN: null, outT: 0, outRate: 0 };
    rows.set(name, r);
    return r;
  };

  const update = (j, now) => {
    const r = row(j.name);
    const st = r.cells[1].firstChild;
    set(st, j.state);
    const cls = 'state state-' + j.state;
    if (st.className !== cls) st.className = cls;
    if (j.last_error) st.title = j.last_error; else st.removeAttribute('title');
    set(r.cells[2], j.mode || '');
    set(r.cells[3], j.state === 'running' ? fmtDuration(j.uptime_seconds) : '–');
    set(r.cells[4], fmtRate(j.events_per_second));
    // Out /s from successive sink counts (the status carries the total).
    if (r.outN !== null && now > r.outT && j.events_out >= r.outN) {
      const dt = (now - r.outT) / 1000;
      if (dt >= 0.5) { r.outRate = (j.events_out - r.outN) / dt; r.outN = j.events_out; r.outT = now; }
    } else { r.outN = j.events_out; r.outT = now; r.outRate = 0; }
    set(r.cells[5], j.state === 'running' ? fmtRate(r.outRate) : '0');
    set(r.cells[6], fmtLag(j.watermark_lag_seconds));
    set(r.cells[7], fmtCount(j.errors));
    set(r.cells[8], j.feedback_level || '–');
    set(r.cells[9], j.restarts);
    const running = ['running', 'starting', 'stopping'].includes(j.state) || j.state === 'backoff';
    r.start.disabled = running;
    r.stop.disabled = !running || j.state === 'stopping';
    r.del.disabled = running;
    return r;
  };

  const render = (list) => {
    const now = performance.now();
    const seen = new Set();
    list.sort((a, b) => a.name.localeCompare(b.name));
    let prev = null;
    for (const j of list) {
      seen.add(j.name);
      const r = update(j, now);
      // Keep DOM order without moving rows that are in place.
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== r.tr) tbody.insertBefore(r.tr, want);
      prev = r.tr;
    }
    for (const [name, r] of rows) {
      if (!seen.has(name)) { r.tr.remove(); rows.delete(name); }
    }
    empty.hidden = rows.size > 0;
    table.hidden = rows.size === 0;
    set(status, `${rows.size} job${rows.size === 1 ? '' : 's'} · updated ${new Date().toLocaleTimeString()}`);
  };

  let list = [];
  const close = live('/api/v1/ws', (m) => {
    if (m.type === 'jobs') { list = m.jobs || []; render(list.slice()); }
    if (m.type === 'status' && m.job) {
      const i = list.findIndex((j) => j.name === m.job.name);
      if (i >= 0) list[i] = m.job; else list.push(m.job);
      render(list.slice());
    }
    if (m.type === 'deleted') { list = list.filter((j) => j.name !== m.name); render(list.slice()); }
  }, (s) => { window.mdpSetConn(s); if (s !== 'live') set(status, 'Connection lost: reconnecting…'); });
  return close;
}
