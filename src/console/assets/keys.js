// Api-keys: list, create (the key is shown once), revoke.
import { get, post, del, qs } from './api.js';
import { h, mount, attempt, time, secretBox, confirmButton, pager } from './ui.js';

const PERMS = ['sessions:read', 'sessions:write', 'sessions:control', 'messages:send', 'messages:read', 'webhooks:write'];

export function render(main) {
  const rows = h('tbody', { id: 'keys-rows' });
  const shown = h('div', { id: 'key-created' });
  const more = pager((c) => load(c));

  function row(k) {
    return h('tr', { dataset: { id: k.id } },
      h('td', {}, k.name, h('div', { class: 'mono muted' }, k.prefix + '…')),
      h('td', { class: 'small' }, k.permissions.join(', ')),
      h('td', { class: 'small' }, time(k.createdAt), h('div', { class: 'muted' }, 'by ' + k.createdByUserId)),
      h('td', { class: 'small' }, time(k.lastUsedAt)),
      h('td', { class: 'small' }, k.expiresAt ? time(k.expiresAt) : 'never'),
      h('td', {}, k.revokedAt ? h('span', { class: 'muted' }, 'revoked ' + time(k.revokedAt))
        : confirmButton('Revoke', async () => {
          const ok = await attempt(() => del('/api/v1/api-keys/' + encodeURIComponent(k.id)).then(() => true), 'Revoked');
          if (ok) load(null);
        })));
  }

  async function load(cursor) {
    const page = await attempt(() => get('/api/v1/api-keys' + qs({ limit: 50, cursor })));
    if (!page) return;
    if (!cursor) rows.replaceChildren();
    page.data.forEach((k) => rows.appendChild(row(k)));
    more.set(page.nextCursor);
  }

  const name = h('input', { id: 'key-name', placeholder: 'name, e.g. billing-service', maxlength: 128 });
  const boxes = PERMS.map((p) => h('input', { type: 'checkbox', value: p, checked: p.endsWith(':read') }));
  const form = h('form', {
    class: 'panel', id: 'key-form',
    onsubmit: async (e) => {
      e.preventDefault();
      const permissions = boxes.filter((b) => b.checked).map((b) => b.value);
      const r = await attempt(() => post('/api/v1/api-keys', { name: name.value.trim(), permissions }), 'Key created');
      if (!r) return;
      mount(shown, secretBox(`Api-key "${r.apiKey.name}"`, r.key, 'key-secret'));
      name.value = '';
      load(null);
    },
  }, h('h2', {}, 'New api-key'),
  h('label', { class: 'block' }, h('span', {}, 'Name'), name),
  h('div', { class: 'row' }, PERMS.map((p, i) => h('label', {}, boxes[i], p))),
  h('div', { class: 'row' }, h('button', { type: 'submit', id: 'key-create' }, 'Create key')));

  mount(main, h('h1', {}, 'API keys'), form, shown,
    h('table', {}, h('thead', {}, h('tr', {}, ['Name', 'Permissions', 'Created', 'Last used', 'Expires', ''].map((t) => h('th', {}, t)))), rows),
    h('div', { class: 'row' }, more.el));
  load(null);
  return null;
}
