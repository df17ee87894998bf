// Events: a live tail of the event stream, filtered by type and session.
// The table keeps the newest MAX_ROWS rows only, so a tab left open on a
// busy gateway stays small.
import { ctx } from './api.js';
import { h, mount, clock } from './ui.js';

const TYPES = ['session.status', 'session.sending_paused', 'message.received', 'message.status',
  'message.reaction', 'message.edited', 'message.revoked', 'webhook.test'];
const MAX_ROWS = 500;

function describe(ev) {
  const d = ev.data || {};
  if (ev.type === 'session.status') return `${d.label || ''} → ${d.status}`;
  if (ev.type === 'session.sending_paused') return `paused until ${new Date(d.until).toLocaleTimeString()}: ${d.reason || ''}`;
  if (ev.type.startsWith('message.')) {
    const text = d.text !== null && d.text !== undefined ? d.text : `[${d.type}]`;
    return `${d.direction === 'in' ? '←' : '→'} ${d.chatId || ''} ${d.status || ''}: ${text}`;
  }
  return JSON.stringify(d);
}

export function render(main) {
  const rows = h('tbody', { id: 'tail-rows' });
  const detail = h('pre', { class: 'hidden', id: 'event-detail' });
  const count = h('span', { id: 'tail-count', class: 'muted small' }, '0 events');
  const state = h('span', { class: 'small muted' });
  let seen = 0;
  let shown = 0;
  let paused = false;

  const typeSel = h('select', { id: 'tail-type' }, h('option', { value: '' }, 'any type'),
    TYPES.map((t) => h('option', { value: t }, t)));
  const sessionIn = h('input', { id: 'tail-session', placeholder: 'session id', size: 28 });
  const pause = h('button', { class: 'secondary', id: 'tail-pause', onclick: () => {
    paused = !paused;
    pause.textContent = paused ? 'Resume' : 'Pause';
  } }, 'Pause');
  const clear = h('button', { class: 'secondary', onclick: () => { rows.replaceChildren(); shown = 0; } }, 'Clear');

  function add(ev) {
    seen += 1;
    count.textContent = `${seen} events received`;
    if (paused) return;
    if (typeSel.value && ev.type !== typeSel.value) return;
    const sid = sessionIn.value.trim();
    if (sid && ev.sessionId !== sid) return;
    const tr = h('tr', {
      dataset: { type: ev.type },
      onclick: () => { detail.textContent = JSON.stringify(ev, null, 2); detail.classList.remove('hidden'); },
    }, h('td', {}, clock(ev.timestamp)), h('td', {}, ev.type), h('td', { class: 'mono' }, ev.sessionId || ''),
    h('td', {}, describe(ev)));
    rows.prepend(tr);
    shown += 1;
    while (shown > MAX_ROWS && rows.lastChild) {
      rows.lastChild.remove();
      shown -= 1;
    }
  }

  mount(main,
    h('h1', {}, 'Events'),
    h('div', { class: 'row panel' }, 'Live tail:', typeSel, sessionIn, pause, clear, h('span', { class: 'grow' }), state, count),
    h('p', { class: 'small muted' }, `Newest first; the last ${MAX_ROWS} are kept. Click a row for its JSON.`),
    detail,
    h('table', { class: 'tail', id: 'tail' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Time'), h('th', {}, 'Type'), h('th', {}, 'Session'), h('th', {}, 'What'))),
      rows));

  if (!ctx.stream) {
    state.textContent = 'No live stream for this caller (needs messages:read).';
    return null;
  }
  const offState = ctx.stream.onState((s) => { state.textContent = 'stream: ' + s; });
  const off = ctx.stream.on(add);
  return () => { off(); offState(); };
}
