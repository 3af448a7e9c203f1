// The dashboard's shell: theme, router, connection indicator.
import * as jobs from './jobs.js';
import * as job from './job.js';
import * as candles from './candles.js';
import * as edit from './edit.js';

const main = document.getElementById('main');
const themeBtn = document.getElementById('theme');
const conn = document.getElementById('conn');

function applyTheme(t) {
  document.documentElement.dataset.theme = t;
  themeBtn.textContent = t === 'dark' ? 'Light' : 'Dark';
  window.dispatchEvent(new CustomEvent('mdp-theme', { detail: t }));
}
applyTheme(localStorage.getItem('mdp-theme') ||
  (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'));
themeBtn.addEventListener('click', () => {
  const t = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
  localStorage.setItem('mdp-theme', t);
  applyTheme(t);
});

/** setConn shows the live connection's state in the header. */
export function setConn(state) { conn.textContent = state === 'live' ? '● live' : state ? '○ ' + state : ''; }
window.mdpSetConn = setConn;

const routes = [
  [/^#?\/?$/, jobs, 'jobs'],
  [/^#\/job\/([^/]+)$/, job, 'jobs'],
  [/^#\/candles\/([^/]+)$/, candles, 'jobs'],
  [/^#\/edit(?:\/([^/]+))?$/, edit, 'edit'],
];

let unmount = null;
function route() {
  if (unmount) { unmount(); unmount = null; }
  setConn('');
  main.replaceChildren();
  const hash = location.hash || '#/';
  for (const [re, page, nav] of routes) {
    const m = hash.split('?')[0].match(re);
    if (!m) continue;
    for (const a of document.querySelectorAll('[data-nav]')) {
      if (a.dataset.nav === nav && (nav !== 'jobs' || page === jobs)) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    const params = new URLSearchParams(hash.split('?')[1] || '');
    unmount = page.mount(main, m[1] ? decodeURIComponent(m[1]) : undefined, params) || null;
    return;
  }
  main.append(Object.assign(document.createElement('p'), { textContent: 'No such page: ' + hash }));
}
window.addEventListener('hashchange', route);

// With a token the API wants a login: the session cookie POST
// /api/v1/login sets serves the pages' requests and WebSockets alike.
async function boot() {
  const resp = await fetch('/api/v1/jobs', { credentials: 'same-origin' }).catch(() => null);
  if (resp && resp.status === 401) {
    const input = Object.assign(document.createElement('input'), { type: 'password', id: 'token', autocomplete: 'current-password', required: true });
    const msg = Object.assign(document.createElement('p'), { className: 'error', role: 'alert' });
    const form = document.createElement('form');
    const label = Object.assign(document.createElement('label'), { textContent: 'API token ' });
    label.append(input);
    const btn = Object.assign(document.createElement('button'), { type: 'submit', textContent: 'Log in' });
    form.append(label, ' ', btn, msg);
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      const r = await fetch('/api/v1/login', { method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token: input.value }) });
      if (r.ok) { route(); return; }
      msg.textContent = 'Wrong token.';
    };
    main.replaceChildren(Object.assign(document.createElement('h1'), { textContent: 'Log in' }), form);
    input.focus();
    return;
  }
  // mdp run serves its one job read-only: no buttons that change things.
  const doc = await fetch('/api/v1/openapi.json', { credentials: 'same-origin' }).then((r) => r.json()).catch(() => null);
  if (doc && doc.paths && !(doc.paths['/api/v1/jobs'] || {}).post) document.documentElement.dataset.readonly = '1';
  route();
}
boot();
