// Edit: a job file editor that validates as you type (POST
// /api/v1/validate) and marks each error at its line and column; submit,
// replace and start from here.
import { api, el, set, enc } from './api.js';

const TEMPLATE = `name: my-job
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL, MSFT], rate: 1000}}
    - {id: bars, type: operator.bars, params: {interval: 1s}}
    - {id: store, type: sink.sqlite, params: {path: my-job.db}}
  edges: [[src, bars], [bars, store]]
`;

// What the server shows in place of a secret (runtime.Mask).
const MASK = 'xxxxx';

/** offsetOf turns a 1-based line and column into an index in text. */
export function offsetOf(text, line, col) {
  let i = 0;
  for (let l = 1; l < line; l++) {
    const n = text.indexOf('\n', i);
    if (n < 0) return text.length;
    i = n + 1;
  }
  return Math.min(text.length, i + Math.max(0, (col || 1) - 1));
}

export function mount(main, name) {
  const editing = !!name;
  let filename = 'job.yaml';
  const gutter = el('div', { class: 'gutter', 'aria-hidden': 'true' });
  const area = el('textarea', { id: 'editor', spellcheck: 'false', autocomplete: 'off', 'aria-label': 'Job file (YAML)', 'aria-describedby': 'verdict' });
  const verdict = el('p', { id: 'verdict', role: 'status', 'aria-live': 'polite' });
  const problems = el('ul', { class: 'problems', id: 'problems', 'aria-label': 'Problems' });
  const result = el('p', { role: 'alert' });
  const btns = [];
  const btn = (label, fn, id) => { const b = el('button', { type: 'button', id }, label); b.onclick = () => run(b, fn); btns.push(b); return b; };
  const bar = el('p', { class: 'controls' });
  if (editing) {
    bar.append(el('a', { href: `#/job/${enc(name)}` }, '← Job'),
      btn('Replace', () => api.replace(name, area.value, filename), 'replace'),
      btn('Start', () => api.start(name), 'start'));
  } else {
    bar.append(btn('Submit', async () => go(await api.submit(area.value, filename, false)), 'submit'),
      btn('Submit and start', async () => go(await api.submit(area.value, filename, true)), 'submitstart'));
  }
  main.append(el('h1', {}, editing ? `Edit · ${name}` : 'New job'), bar,
    el('div', { class: 'editor' }, gutter, area), verdict, problems, result);

  const go = (st) => { location.hash = `#/job/${enc(st.name)}`; };
  async function run(b, fn) {
    for (const x of btns) x.disabled = true;
    result.textContent = ''; result.className = '';
    try {
      await fn();
      result.textContent = 'Done.'; result.className = 'ok';
    } catch (e) {
      result.textContent = e.message; result.className = 'error';
      if (e.body && e.body.errors) show(e.body.errors);
    }
    for (const x of btns) x.disabled = false;
  }

  let marks = new Map(); // line -> messages
  const drawGutter = () => {
    const n = area.value.split('\n').length;
    if (gutter.childNodes.length !== n) {
      const rows = [];
      for (let i = 1; i <= n; i++) rows.push(el('div', { 'data-line': i }, i));
      gutter.replaceChildren(...rows);
    }
    for (const d of gutter.childNodes) {
      const m = marks.get(Number(d.dataset.line));
      d.classList.toggle('bad', !!m);
      if (m) d.title = m.join('\n'); else d.removeAttribute('title');
    }
    gutter.scrollTop = area.scrollTop;
  };
  const show = (errs) => {
    marks = new Map();
    problems.replaceChildren(...errs.map((e) => {
      const line = e.line || 1;
      (marks.get(line) || marks.set(line, []).get(line)).push(e.message);
      const b = el('button', { type: 'button', 'data-line': line, 'data-column': e.column || 1 },
        `line ${line}, column ${e.column || 1}: ${e.path ? e.path + ': ' : ''}${e.message}`);
      b.onclick = () => {
        area.focus();
        const at = offsetOf(area.value, line, e.column);
        area.setSelectionRange(at, at);
        area.scrollTop = Math.max(0, (line - 3) * 20);
      };
      return el('li', {}, b);
    }));
    drawGutter();
  };

  let timer = null, seq = 0;
  const validate = async () => {
    const mine = ++seq;
    try {
      const v = await api.validate(area.value, filename);
      if (mine !== seq) return;
      if (!v.valid) {
        const errs = v.errors || [];
        verdict.className = 'error';
        set(verdict, `${errs.length} problem${errs.length === 1 ? '' : 's'}:`);
        show(errs);
        return;
      }
      verdict.className = 'ok';
      set(verdict, `Valid: ${v.name}, ${v.mode}, ${v.nodes} nodes, ${v.edges} edges.`);
      show([]);
    } catch (e) {
      if (mine !== seq) return;
      verdict.className = 'error';
      const errs = (e.body && e.body.errors) || [];
      set(verdict, errs.length ? `${errs.length} problem${errs.length === 1 ? '' : 's'}:` : e.message);
      show(errs);
    }
  };
  area.addEventListener('input', () => { drawGutter(); clearTimeout(timer); timer = setTimeout(validate, 300); });
  area.addEventListener('scroll', () => { gutter.scrollTop = area.scrollTop; });

  const load = async () => {
    if (editing) {
      try {
        const d = await api.definition(name);
        area.value = d.definition; filename = d.filename || filename;
        if (d.definition.includes(MASK)) {
          result.className = 'error';
          result.textContent = `The server masks secrets as ${MASK} in what it shows: put them back (or use \${VAR} from the server's environment) before Replace, or the job will run with the mask.`;
        }
      } catch (e) { result.textContent = e.message; result.className = 'error'; }
    } else {
      area.value = TEMPLATE;
    }
    drawGutter();
    validate();
  };
  load();
  return () => clearTimeout(timer);
}
