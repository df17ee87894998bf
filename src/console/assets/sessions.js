// Sessions: the organization's sessions (or every organization's, for a
// super_admin without one), a page at a time; statuses tick live.
import { ctx, get, post, qs } from './api.js';
import { h, mount, badge, attempt, time, pager } from './ui.js';

const STATUSES = ['', 'stopped', 'starting', 'scan_qr_code', 'working', 'failed', 'logged_out'];

export function render(main, probe) {
  const admin = ctx.adminView;
  const rows = new Map();
  const tbody = h('tbody', { id: 'sessions-rows' });
  const filters = { status: '', organizationId: '', gatewayId: '' };
  const more = pager((c) => load(c));
  const empty = h('p', { class: 'muted hidden', id: 'sessions-empty' }, 'No sessions yet.');

  function row(s) {
    const open = !admin || s.organizationId === ctx.me.organizationId;
    const cells = [
      h('td', {}, h('div', {}, s.label || '(no label)'), h('div', { class: 'mono muted' }, s.id)),
      admin ? h('td', {}, s.organizationId) : null,
      h('td', {}, badge(s.status)),
      h('td', {}, s.phoneNumber || '—', s.waLid ? h('div', { class: 'mono muted' }, s.waLid) : null),
      h('td', { class: 'small' }, time(s.updatedAt)),
    ];
    if (admin) {
      cells.push(h('td', {},
        h('button', { class: 'secondary control', onclick: (e) => { e.stopPropagation(); control(s.id, 'start'); } }, 'Start'), ' ',
        h('button', { class: 'secondary control', onclick: (e) => { e.stopPropagation(); control(s.id, 'stop'); } }, 'Stop')));
    }
    return h('tr', {
      class: open ? 'clickable' : '', dataset: { id: s.id, status: s.status },
      onclick: open ? () => { location.hash = '#/sessions/' + encodeURIComponent(s.id); } : null,
    }, cells);
  }

  const seen = new Map(); // session id → updatedAt shown
  function put(s) {
    if ((seen.get(s.id) || 0) > s.updatedAt) return;
    seen.set(s.id, s.updatedAt);
    const el = row(s);
    const old = rows.get(s.id);
    if (old) old.replaceWith(el); else tbody.appendChild(el);
    rows.set(s.id, el);
    empty.classList.add('hidden');
  }

  async function control(id, action) {
    const s = await attempt(() => post(`/api/v1/admin/sessions/${encodeURIComponent(id)}/${action}`), `${action}: ok`);
    if (s) put(s);
  }

  async function load(cursor) {
    const base = admin ? '/api/v1/admin/sessions' : '/api/v1/sessions';
    const q = admin ? { ...filters } : { status: filters.status };
    const page = await attempt(() => get(base + qs({ ...q, limit: 50, cursor })));
    if (!page) return;
    if (!cursor) { rows.clear(); seen.clear(); tbody.replaceChildren(); }
    page.data.forEach(put);
    more.set(page.nextCursor);
    empty.classList.toggle('hidden', rows.size > 0);
    if (probe && probe.sessionsShownAt === null) probe.sessionsShownAt = performance.now();
  }

  const statusSel = h('select', { id: 'filter-status', onchange: () => { filters.status = statusSel.value; load(null); } },
    STATUSES.map((s) => h('option', { value: s }, s || 'any status')));
  const filterBar = [statusSel];
  if (admin) {
    for (const [key, label] of [['organizationId', 'organization id'], ['gatewayId', 'gateway id']]) {
      const input = h('input', { placeholder: label, id: 'filter-' + key, onchange: () => { filters[key] = input.value.trim(); load(null); } });
      filterBar.push(input);
    }
  }

  let create = null;
  if (ctx.can('sessions:write') && !admin) {
    const label = h('input', { id: 'new-session-label', placeholder: 'label, e.g. support line', maxlength: 128 });
    create = h('form', {
      class: 'row', id: 'new-session-form',
      onsubmit: async (e) => {
        e.preventDefault();
        const s = await attempt(() => post('/api/v1/sessions', { label: label.value.trim() }), 'Session created');
        if (s) location.hash = '#/sessions/' + encodeURIComponent(s.id);
      },
    }, label, h('button', { type: 'submit', id: 'new-session' }, 'New session'));
  }

  mount(main,
    h('div', { class: 'row' }, h('h1', { class: 'grow' }, admin ? 'Sessions (all organizations)' : 'Sessions'), create),
    h('div', { class: 'row panel' }, 'Filter:', filterBar),
    h('table', { id: 'sessions' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Session'), admin ? h('th', {}, 'Organization') : null, h('th', {}, 'Status'),
        h('th', {}, 'Phone / LID'), h('th', {}, 'Updated'), admin ? h('th', {}, '') : null)),
      tbody),
    empty,
    h('div', { class: 'row' }, more.el));

  load(null);
  if (!ctx.stream) return null;
  return ctx.stream.on((ev) => {
    if (ev.type !== 'session.status' || !ev.data) return;
    const s = ev.data;
    if (filters.status && s.status !== filters.status && !rows.has(s.id)) return;
    if (rows.has(s.id) || more.el.classList.contains('hidden')) put(s);
  });
}
