// The job server's API, as the pages use it.

const enc = encodeURIComponent;

/** request sends a request and returns the decoded JSON body; a response
 * that is not 2xx throws an Error carrying status and body. */
export async function request(method, path, body, contentType) {
  const opts = { method, headers: {}, credentials: 'same-origin' };
  if (body !== undefined) {
    opts.body = body;
    opts.headers['Content-Type'] = contentType || 'application/yaml';
  }
  const resp = await fetch(path, opts);
  let data = null;
  const text = await resp.text();
  try { data = text ? JSON.parse(text) : null; } catch { data = { error: text }; }
  if (!resp.ok) {
    const err = new Error((data && data.error) || `${method} ${path}: ${resp.status}`);
    err.status = resp.status;
    err.body = data;
    throw err;
  }
  return data;
}

export const api = {
  jobs: () => request('GET', '/api/v1/jobs'),
  job: (name) => request('GET', `/api/v1/jobs/${enc(name)}`),
  start: (name) => request('POST', `/api/v1/jobs/${enc(name)}/start`),
  stop: (name) => request('POST', `/api/v1/jobs/${enc(name)}/stop`),
  remove: (name) => request('DELETE', `/api/v1/jobs/${enc(name)}`),
  logs: (name, since) => request('GET', `/api/v1/jobs/${enc(name)}/logs?tail=200&since=${since || 0}`),
  definition: (name) => request('GET', `/api/v1/jobs/${enc(name)}/definition`),
  history: (name) => request('GET', `/api/v1/jobs/${enc(name)}/history`),
  taps: (name) => request('GET', `/api/v1/jobs/${enc(name)}/taps`),
  validate: (text, filename) => request('POST', `/api/v1/validate?lint=true&filename=${enc(filename || 'job.yaml')}`, text),
  submit: (text, filename, start) => request('POST', `/api/v1/jobs?start=${start ? 'true' : 'false'}&filename=${enc(filename || 'job.yaml')}`, text),
  replace: (name, text, filename) => request('PUT', `/api/v1/jobs/${enc(name)}?filename=${enc(filename || 'job.yaml')}`, text),
};

/** live opens a WebSocket to path and calls onMessage with each decoded
 * message; it reconnects after a drop (1 s, doubling to 10 s) until the
 * returned close function is called. onState gets 'live' or 'reconnecting'. */
export function live(path, onMessage, onState) {
  let ws = null, closed = false, delay = 1000, timer = null;
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + path;
  const open = () => {
    ws = new WebSocket(url);
    ws.onopen = () => { delay = 1000; onState && onState('live'); };
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      onMessage(m);
    };
    ws.onclose = (ev) => {
      if (closed) return;
      if (ev.code === 1000 && ev.reason === 'run ended') { onState && onState('run ended', ev); return; } // nothing more to come
      onState && onState('reconnecting', ev);
      timer = setTimeout(open, delay);
      delay = Math.min(delay * 2, 10000);
    };
  };
  open();
  return () => { closed = true; clearTimeout(timer); if (ws) ws.close(1000); };
}

/** el builds an element: el('td', {class: 'num'}, 'text', child...). */
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

/** set changes an element's text only when it differs (no layout work for
 * figures that did not move). */
export function set(e, text) {
  text = String(text);
  if (e.textContent !== text) e.textContent = text;
}

export function fmtRate(v) {
  if (!isFinite(v) || v <= 0) return '0';
  if (v >= 1e6) return (v / 1e6).toFixed(2) + 'M';
  if (v >= 1e3) return (v / 1e3).toFixed(1) + 'k';
  return v.toFixed(v < 10 ? 1 : 0);
}

export function fmtCount(v) { return (v || 0).toLocaleString('en-US'); }

export function fmtDuration(s) {
  if (!s || s < 0) return '–';
  if (s < 60) return s.toFixed(0) + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm ' + Math.floor(s % 60) + 's';
  if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
  return Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
}

export function fmtLag(s) {
  if (!s) return '–';
  if (Math.abs(s) < 1) return (s * 1000).toFixed(0) + ' ms';
  return fmtDuration(s);
}

export { enc };
