// DOM helpers. Everything the gateway returns is rendered as text
// (textContent / createElement), never parsed as HTML: message texts are
// written by strangers.

/**
 * What the browser tests read (`window.__wag`): CSP violations seen, and
 * when the sessions list was first shown (ms since navigation start).
 */
export function installProbe() {
  const probe = { cspViolations: 0, cspSamples: [], sessionsShownAt: null };
  window.__wag = probe;
  document.addEventListener('securitypolicyviolation', (e) => {
    probe.cspViolations += 1;
    if (probe.cspSamples.length < 10) probe.cspSamples.push(`${e.violatedDirective} ${e.blockedURI}`);
  });
  return probe;
}

/**
 * Creates an element: h('button', {class: 'x', onclick: fn}, 'text', child).
 * Attributes starting with "on" become listeners; `dataset` and `props` set
 * those objects; strings and numbers become text nodes.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'props') Object.assign(el, v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A short note in the corner; errors stay longer. */
export function flash(text, isError) {
  const box = document.getElementById('flash');
  const note = h('div', { class: 'note' + (isError ? ' error' : '') }, text);
  box.appendChild(note);
  setTimeout(() => note.remove(), isError ? 8000 : 3000);
}

/** Runs an async action, reporting its failure; answers its result. */
export async function attempt(fn, okText) {
  try {
    const r = await fn();
    if (okText) flash(okText);
    return r;
  } catch (e) {
    const field = e.details && e.details.field ? ` (${e.details.field})` : '';
    flash(`${e.code || 'error'}: ${e.message}${field}`, true);
    return undefined;
  }
}

export function time(ms) {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(ms);
  return d.toLocaleString(undefined, { hour12: false });
}

export function clock(ms) {
  if (ms === null || ms === undefined) return '';
  return new Date(ms).toLocaleTimeString(undefined, { hour12: false });
}

export function badge(status) {
  return h('span', { class: 'badge ' + status, dataset: { status } }, status);
}

/** A definition list from [label, value] pairs. */
export function kv(pairs) {
  const dl = h('dl', { class: 'kv' });
  for (const [k, v] of pairs) {
    dl.appendChild(h('dt', {}, k));
    dl.appendChild(h('dd', {}, v === null || v === undefined || v === '' ? '—' : v));
  }
  return dl;
}

/** A secret shown once, with a copy button. */
export function secretBox(title, value, id) {
  const code = h('code', { class: 'mono', id }, value);
  const copy = h('button', {
    class: 'secondary',
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(value);
        copy.textContent = 'Copied';
      } catch (_) {
        const r = document.createRange();
        r.selectNodeContents(code);
        const s = window.getSelection();
        s.removeAllRanges();
        s.addRange(r);
        copy.textContent = 'Selected: press Ctrl+C';
      }
    },
  }, 'Copy');
  return h('div', { class: 'secret' },
    h('strong', {}, title), h('p', { class: 'small' }, 'Shown only this once: copy it now.'),
    h('div', { class: 'row' }, code, copy));
}

/** A button that asks for a second click before doing something destructive. */
export function confirmButton(label, action, cls, name) {
  let armed = false;
  const b = h('button', {
    class: cls || 'danger', dataset: name ? { action: name } : undefined,
    onclick: async () => {
      if (!armed) {
        armed = true;
        b.textContent = 'Really ' + label.toLowerCase() + '?';
        setTimeout(() => { armed = false; b.textContent = label; }, 4000);
        return;
      }
      armed = false;
      b.textContent = label;
      await action();
    },
  }, label);
  return b;
}

/** A "Load more" button for cursor pages; hidden when there is no next page. */
export function pager(load) {
  const b = h('button', { class: 'secondary hidden' }, 'Load more');
  let cursor = null;
  b.addEventListener('click', () => load(cursor));
  return {
    el: b,
    set(next) { cursor = next; b.classList.toggle('hidden', !next); },
  };
}
