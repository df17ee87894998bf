// One session: its fields, settings (PATCH), lifecycle controls, and the
// QR code live while it waits for a phone (polled; swapped as it rotates,
// gone once the phone links), plus linking by pairing code.
import { ctx, get, post, patch, del, blobUrl } from './api.js';
import { h, mount, badge, kv, attempt, time, flash, confirmButton } from './ui.js';

export function render(main, id) {
  const base = '/api/v1/sessions/' + encodeURIComponent(id);
  const canWrite = ctx.can('sessions:write');
  const canControl = ctx.can('sessions:control');
  let current = null;
  let qrTimer = null;
  let qrValue = null;
  let qrUrl = null;
  let pollTimer = null;
  let gone = false;

  const title = h('h1', { class: 'grow' });
  const status = h('span', { id: 'session-status' });
  const fields = h('div', { id: 'session-fields' });
  const lastError = h('p', { class: 'error hidden', id: 'session-error' });
  const qrImg = h('img', { id: 'qr-img', alt: 'QR code: scan it with WhatsApp on the phone (Linked devices)' });
  const qrNote = h('p', { class: 'small muted', id: 'qr-note' });
  const qrBox = h('div', { class: 'panel hidden', id: 'qr' },
    h('h2', {}, 'Link a phone'),
    h('div', { class: 'qr' }, qrImg, h('div', {},
      h('p', {}, 'On the phone: WhatsApp → Settings → Linked devices → Link a device, and scan this code.'),
      qrNote, pairForm())));

  function pairForm() {
    const phone = h('input', { id: 'pair-phone', placeholder: 'phone number, digits only', inputmode: 'numeric' });
    const out = h('p', { class: 'mono', id: 'pair-code' });
    return h('form', {
      onsubmit: async (e) => {
        e.preventDefault();
        const r = await attempt(() => post(base + '/pair-code', { phoneNumber: phone.value.trim() }));
        if (r) out.textContent = 'Enter this code on the phone: ' + r.code;
      },
    }, h('h2', {}, 'Or link with a pairing code'), h('div', { class: 'row' }, phone, h('button', { type: 'submit', class: 'secondary' }, 'Get code')), out);
  }

  function stopQr() {
    if (qrTimer) clearTimeout(qrTimer);
    qrTimer = null;
    qrValue = null;
    if (qrUrl) URL.revokeObjectURL(qrUrl);
    qrUrl = null;
    qrImg.removeAttribute('src');
    qrBox.classList.add('hidden');
  }

  async function pollQr() {
    qrTimer = null;
    if (gone || !current || current.status !== 'scan_qr_code') return;
    try {
      const q = await get(base + '/qr');
      if (q.value !== qrValue) {
        const url = await blobUrl(base + '/qr', 'image/png');
        if (gone || !current || current.status !== 'scan_qr_code') { URL.revokeObjectURL(url); return; }
        if (qrUrl) URL.revokeObjectURL(qrUrl);
        qrUrl = url;
        qrValue = q.value;
        qrImg.src = url;
        qrBox.classList.remove('hidden');
      }
      qrNote.textContent = q.expiresAt ? 'This code rotates; next at ' + new Date(q.expiresAt).toLocaleTimeString() : '';
    } catch (_) {
      // Not (or no longer) waiting for a scan: the status event says what happened.
    }
    if (!gone && current && current.status === 'scan_qr_code') qrTimer = setTimeout(pollQr, 2000);
  }

  function show(s) {
    // Answers and stream events may cross: never go back to an older state.
    if (current && current.id === s.id && s.updatedAt < current.updatedAt) return;
    current = s;
    title.textContent = s.label || '(no label)';
    mount(status, badge(s.status));
    mount(fields, kv([
      ['id', s.id], ['organization', s.organizationId], ['status', s.status], ['phone number', s.phoneNumber],
      ['WhatsApp JID', s.waJid], ['WhatsApp LID', s.waLid], ['auto-read', String(s.autoRead)],
      ['typing presence', String(s.presenceTyping)], ['rate per minute', s.ratePerMin], ['rate per hour', s.ratePerHour],
      ['admin session', String(s.isAdminSession)], ['gateway', s.gatewayId], ['created by', s.createdByUserId],
      ['last connected', time(s.lastConnectedAt)], ['created', time(s.createdAt)], ['updated', time(s.updatedAt)],
    ]));
    lastError.textContent = s.lastError ? 'Last error: ' + s.lastError : '';
    lastError.classList.toggle('hidden', !s.lastError);
    if (canControl && s.status === 'scan_qr_code') {
      if (!qrTimer) pollQr();
    } else {
      stopQr();
    }
    fillForm(s);
  }

  // Settings form (sessions:write).
  const label = h('input', { id: 'edit-label', maxlength: 128 });
  const perMin = h('input', { id: 'edit-rate-min', type: 'number', min: 1, max: 100000 });
  const perHour = h('input', { id: 'edit-rate-hour', type: 'number', min: 1, max: 100000 });
  const autoRead = h('input', { id: 'edit-auto-read', type: 'checkbox' });
  const typing = h('input', { id: 'edit-typing', type: 'checkbox' });
  function fillForm(s) {
    if (document.activeElement && settings.contains(document.activeElement)) return;
    label.value = s.label || '';
    perMin.value = s.ratePerMin;
    perHour.value = s.ratePerHour;
    autoRead.checked = !!s.autoRead;
    typing.checked = !!s.presenceTyping;
  }
  const settings = h('form', {
    class: 'panel', id: 'session-settings',
    onsubmit: async (e) => {
      e.preventDefault();
      const s = await attempt(() => patch(base, {
        label: label.value, ratePerMin: Number(perMin.value), ratePerHour: Number(perHour.value),
        autoRead: autoRead.checked, presenceTyping: typing.checked,
      }), 'Saved');
      if (s) show(s);
    },
  }, h('h2', {}, 'Settings'),
  h('label', { class: 'block' }, h('span', {}, 'Label'), label),
  h('div', { class: 'row' },
    h('label', { class: 'block' }, h('span', {}, 'Sends per minute'), perMin),
    h('label', { class: 'block' }, h('span', {}, 'Sends per hour'), perHour)),
  h('div', { class: 'row' }, h('label', {}, autoRead, 'Mark inbound messages read'), h('label', {}, typing, 'Show typing before sends')),
  h('div', { class: 'row' }, h('button', { type: 'submit', id: 'save-settings' }, 'Save')));

  const act = (action, text) => h('button', {
    class: 'secondary control', id: 'session-' + action,
    onclick: async () => { const s = await attempt(() => post(base + '/' + action), text); if (s) show(s); },
  }, action[0].toUpperCase() + action.slice(1));
  const controls = h('div', { class: 'row panel', id: 'session-controls' },
    act('start', 'Starting'), act('stop', 'Stopped'), act('restart', 'Restarting'),
    confirmButton('Logout', async () => { const s = await attempt(() => post(base + '/logout'), 'Logged out'); if (s && s.id) show(s); }, 'danger control'));

  const danger = h('div', { class: 'panel' }, h('h2', {}, 'Delete'),
    h('p', { class: 'small muted' }, 'Deletes the session, its WhatsApp link and its send queue.'),
    confirmButton('Delete session', async () => {
      const ok = await attempt(() => del(base).then(() => true), 'Deleted');
      if (ok) location.hash = '#/sessions';
    }));

  mount(main,
    h('p', {}, h('a', { href: '#/sessions' }, '← Sessions')),
    h('div', { class: 'row' }, title, status,
      ctx.can('messages:read') ? h('a', { href: '#/messages/' + encodeURIComponent(id), id: 'open-messages' }, 'Messages →') : null),
    lastError,
    canControl ? controls : null,
    canControl ? qrBox : null,
    h('div', { class: 'panel' }, fields),
    canWrite ? settings : null,
    canWrite ? danger : null);

  attempt(() => get(base)).then((s) => { if (s && !gone) show(s); });

  const off = ctx.stream ? ctx.stream.on((ev) => {
    if (ev.type === 'session.status' && ev.data && ev.data.id === id) show(ev.data);
  }) : null;
  // Without the stream (no messages:read), poll.
  if (!ctx.stream) {
    const poll = async () => {
      try { const s = await get(base); if (!gone) show(s); } catch (e) { if (e.status === 404) flash('session not found', true); }
      if (!gone) pollTimer = setTimeout(poll, 3000);
    };
    pollTimer = setTimeout(poll, 3000);
  }
  return () => {
    gone = true;
    stopQr();
    if (pollTimer) clearTimeout(pollTimer);
    if (off) off();
  };
}
