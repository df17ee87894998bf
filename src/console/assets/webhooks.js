// Webhooks: list, create (the signing secret is shown once, with a copy
// button), enable/disable, test, rotate the secret, the delivery log, replay.
import { get, post, patch, del, qs } from './api.js';
import { h, mount, attempt, time, secretBox, confirmButton, pager } from './ui.js';

const EVENTS = ['*', 'session.status', 'session.sending_paused', 'message.received', 'message.status',
  'message.reaction', 'message.edited', 'message.revoked'];

export function render(main) {
  const rows = h('tbody', { id: 'webhooks-rows' });
  const secret = h('div', { id: 'webhook-secret-box' });
  const panel = h('div', { id: 'webhook-panel' });
  const more = pager((c) => load(c));
  const path = (id, rest) => '/api/v1/webhooks/' + encodeURIComponent(id) + (rest || '');

  function row(w) {
    const toggle = h('button', {
      class: 'secondary', dataset: { action: 'toggle' },
      onclick: async () => {
        const r = await attempt(() => patch(path(w.id), { enabled: !w.enabled }), w.enabled ? 'Disabled' : 'Enabled');
        if (r) put(r);
      },
    }, w.enabled ? 'Disable' : 'Enable');
    const tr = h('tr', { dataset: { id: w.id, enabled: String(w.enabled) } },
      h('td', {}, h('div', { class: 'mono' }, w.url), w.description ? h('div', { class: 'muted small' }, w.description) : null),
      h('td', { class: 'small' }, w.events.join(', '), w.sessionIds && w.sessionIds.length ? h('div', { class: 'muted' }, 'sessions: ' + w.sessionIds.join(', ')) : null),
      h('td', {}, w.enabled ? 'enabled' : h('span', { class: 'error' }, 'disabled' + (w.disabledReason ? ': ' + w.disabledReason : ''))),
      h('td', {},
        h('div', { class: 'row' }, toggle,
          h('button', { class: 'secondary', dataset: { action: 'test' }, onclick: () => attempt(() => post(path(w.id, '/test')), 'Test event queued') }, 'Test'),
          h('button', { class: 'secondary', dataset: { action: 'deliveries' }, onclick: () => showDeliveries(w) }, 'Deliveries'),
          h('button', { class: 'secondary', dataset: { action: 'replay' }, onclick: () => showReplay(w) }, 'Replay'),
          confirmButton('Rotate secret', async () => {
            const r = await attempt(() => post(path(w.id, '/rotate-secret')), 'Secret rotated');
            if (r) mount(secret, secretBox('New signing secret (the old one keeps signing for 24 h)', r.secret, 'webhook-secret'));
          }, 'secondary', 'rotate'),
          confirmButton('Delete', async () => {
            const ok = await attempt(() => del(path(w.id)).then(() => true), 'Deleted');
            if (ok) { tr.remove(); mount(panel); }
          }))));
    return tr;
  }

  function put(w) {
    const el = row(w);
    const old = rows.querySelector(`tr[data-id="${CSS.escape(w.id)}"]`);
    if (old) old.replaceWith(el); else rows.appendChild(el);
  }

  async function load(cursor) {
    const page = await attempt(() => get('/api/v1/webhooks' + qs({ limit: 50, cursor })));
    if (!page) return;
    if (!cursor) rows.replaceChildren();
    page.data.forEach(put);
    more.set(page.nextCursor);
  }

  async function showDeliveries(w, cursor) {
    const page = await attempt(() => get(path(w.id, '/deliveries') + qs({ limit: 50, cursor })));
    if (!page) return;
    const body = h('tbody', {}, page.data.map((d) => h('tr', {},
      h('td', { class: 'small' }, time(d.at)), h('td', { class: 'mono' }, d.eventId), h('td', {}, d.attempt),
      h('td', {}, d.status === null || d.status === undefined ? h('span', { class: 'error' }, d.error || 'error') : String(d.status)),
      h('td', {}, d.latencyMs + ' ms'), h('td', { class: 'mono small' }, d.response || ''))));
    mount(panel, h('div', { class: 'panel', id: 'deliveries' },
      h('h2', {}, 'Deliveries of ', w.url),
      page.data.length ? h('table', {}, h('thead', {}, h('tr', {}, ['At', 'Event', 'Attempt', 'Status', 'Latency', 'Answer'].map((t) => h('th', {}, t)))), body)
        : h('p', { class: 'muted' }, 'No delivery attempts yet.'),
      page.nextCursor ? h('button', { class: 'secondary', onclick: () => showDeliveries(w, page.nextCursor) }, 'Next page') : null));
  }

  function showReplay(w) {
    const since = h('input', { type: 'datetime-local', id: 'replay-since' });
    const onlyFailed = h('input', { type: 'checkbox' });
    const d = new Date(Date.now() - 3600 * 1000);
    since.value = new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
    mount(panel, h('form', {
      class: 'panel', id: 'replay-form',
      onsubmit: async (e) => {
        e.preventDefault();
        const r = await attempt(() => post(path(w.id, '/replay'), { since: new Date(since.value).getTime(), onlyFailed: onlyFailed.checked }));
        if (r) mount(panel, h('p', { class: 'panel' }, `Replay queued: ${r.queued} events to ${w.url}.`));
      },
    }, h('h2', {}, 'Replay events to ', w.url),
    h('div', { class: 'row' }, h('label', {}, 'since', since), h('label', {}, onlyFailed, 'only failed deliveries'),
      h('button', { type: 'submit' }, 'Replay'))));
  }

  const url = h('input', { id: 'webhook-url', placeholder: 'https://example.com/hooks/whatsapp', size: 50 });
  const desc = h('input', { id: 'webhook-description', placeholder: 'description (optional)', size: 30 });
  const sessions = h('input', { id: 'webhook-sessions', placeholder: 'session ids, comma-separated (optional: all)', size: 50 });
  const boxes = EVENTS.map((ev) => h('input', { type: 'checkbox', value: ev, checked: ev === '*' }));
  const form = h('form', {
    class: 'panel', id: 'webhook-form',
    onsubmit: async (e) => {
      e.preventDefault();
      const body = { url: url.value.trim(), events: boxes.filter((b) => b.checked).map((b) => b.value) };
      const ids = sessions.value.split(',').map((s) => s.trim()).filter(Boolean);
      if (ids.length) body.sessionIds = ids;
      if (desc.value.trim()) body.description = desc.value.trim();
      const r = await attempt(() => post('/api/v1/webhooks', body), 'Webhook created');
      if (!r) return;
      mount(secret, secretBox('Signing secret of ' + r.webhook.url, r.secret, 'webhook-secret'));
      url.value = '';
      put(r.webhook);
    },
  }, h('h2', {}, 'New webhook'),
  h('div', { class: 'row' }, url, desc),
  h('div', { class: 'row' }, sessions),
  h('div', { class: 'row small' }, EVENTS.map((ev, i) => h('label', {}, boxes[i], ev === '*' ? 'every event (*)' : ev))),
  h('div', { class: 'row' }, h('button', { type: 'submit', id: 'webhook-create' }, 'Create webhook')));

  mount(main, h('h1', {}, 'Webhooks'), form, secret,
    h('table', { id: 'webhooks' }, h('thead', {}, h('tr', {}, ['URL', 'Events', 'State', ''].map((t) => h('th', {}, t)))), rows),
    h('div', { class: 'row' }, more.el), panel);
  load(null);
  return null;
}
