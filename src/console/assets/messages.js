// Messages: a session's chats with their latest message, one chat's
// thread (both directions, statuses ticking live as receipts arrive), and
// a send box for text or a file (sent as base64 media).
import { ctx, get, post, qs } from './api.js';
import { h, mount, attempt, clock, time, badge } from './ui.js';

/** Pages of 200 read at most per list (the console is not an archive). */
const MAX_PAGES = 10;

// Plain glyphs only: an offline VM may have no emoji font.
const TICKS = { sent: '✓', delivered: '✓✓', read: '✓✓', failed: '✗' };

async function walk(path, params) {
  const out = [];
  let cursor = null;
  for (let i = 0; i < MAX_PAGES; i++) {
    const page = await get(path + qs({ ...params, limit: 200, cursor }));
    out.push(...page.data);
    cursor = page.nextCursor;
    if (!cursor) return { items: out, complete: true };
  }
  return { items: out, complete: false };
}

/** The phone-number part of a JID (`628...@s.whatsapp.net` → `+628...`). */
function phone(jid) {
  if (!jid) return null;
  const m = /^(\d+)@s\.whatsapp\.net$/.exec(jid);
  return m ? '+' + m[1] : jid;
}

function who(jid, lid) {
  const parts = [];
  if (jid) parts.push(phone(jid));
  if (lid) parts.push(lid);
  return parts.length ? parts.join(' · ') : null;
}

const RANK = { received: 0, scheduled: 0, queued: 1, sending: 2, sent: 3, delivered: 4, read: 5, failed: 6, canceled: 6, expired: 6, revoked: 7 };

/** Whether `m` is at least as new as `old` (answers and events may arrive out of order). */
function newer(m, old) {
  if (!old) return true;
  if (m.updatedAt !== old.updatedAt) return m.updatedAt > old.updatedAt;
  return (RANK[m.status] || 0) >= (RANK[old.status] || 0);
}

function size(bytes) {
  if (bytes === null || bytes === undefined) return '';
  return bytes < 1024 ? bytes + ' B' : Math.round(bytes / 1024) + ' KiB';
}

function summary(m) {
  if (m.text) return m.text;
  if (m.media) return `[${m.type}] ${m.media.fileName || m.media.mimetype || ''}`;
  if (m.location) return `[location] ${m.location.name || ''} ${m.location.latitude},${m.location.longitude}`;
  if (m.contact) return `[contact] ${m.contact.name || ''} ${m.contact.phoneNumber || ''}`;
  if (m.reaction) return `[reaction] ${m.reaction.emoji || '(removed)'}`;
  return `[${m.type}]`;
}

function messageEl(m) {
  const status = h('span', { class: 'status ' + m.status, dataset: { status: m.status } },
    `${TICKS[m.status] || ''} ${m.status}`.trim());
  const body = [];
  if (m.type !== 'text') body.push(h('div', { class: 'small muted' }, `[${m.type}]`,
    m.media ? ` ${m.media.fileName || ''} ${m.media.mimetype || ''} ${size(m.media.sizeBytes)}` : ''));
  if (m.text !== null && m.text !== undefined) body.push(h('div', { class: 'text' }, m.text));
  else if (m.type !== 'text') body.push(h('div', { class: 'text' }, summary(m)));
  if (m.error) body.push(h('div', { class: 'small error' }, `${m.error.code}: ${m.error.message}`));
  const from = m.direction === 'in' ? who(m.senderJid, m.senderLid) : null;
  return h('div', { class: 'msg ' + m.direction, dataset: { id: m.id, direction: m.direction } },
    body,
    h('div', { class: 'meta' }, from && m.chatId.endsWith('@g.us') ? h('span', {}, from) : null,
      h('span', { title: time(m.createdAt) }, clock(m.createdAt)), status));
}

function pickSession(main) {
  const list = h('ul', { class: 'chats', id: 'message-sessions' });
  mount(main, h('h1', {}, 'Messages'), h('p', { class: 'muted' }, 'Choose a session:'), list);
  attempt(() => get('/api/v1/sessions?limit=200')).then((page) => {
    if (!page) return;
    for (const s of page.data) {
      list.appendChild(h('li', { onclick: () => { location.hash = '#/messages/' + encodeURIComponent(s.id); } },
        h('div', {}, s.label || s.id, ' ', badge(s.status)), h('div', { class: 'last' }, s.phoneNumber || s.id)));
    }
    if (!page.data.length) list.appendChild(h('li', { class: 'muted' }, 'No sessions.'));
  });
  return null;
}

export function render(main, sid, chatId) {
  if (!sid) return pickSession(main);
  const base = '/api/v1/sessions/' + encodeURIComponent(sid) + '/messages';
  const chats = new Map(); // chatId → {chatId, chatJid, chatLid, last}
  const thread = new Map(); // message id → element
  const latest = new Map(); // message id → the newest version seen
  let gone = false;

  const chatList = h('ul', { class: 'chats', id: 'chats' });
  const threadEl = h('div', { class: 'thread', id: 'thread' });
  const header = h('div', { id: 'chat-header' });
  const note = h('p', { class: 'small muted' });

  function chatEntry(m) {
    const c = chats.get(m.chatId) || { chatId: m.chatId, chatJid: null, chatLid: null, last: null };
    c.chatJid = m.chatJid || c.chatJid;
    c.chatLid = m.chatLid || c.chatLid;
    if (!c.last || m.id >= c.last.id) c.last = m;
    chats.set(m.chatId, c);
    return c;
  }

  function renderChats() {
    const sorted = [...chats.values()].sort((a, b) => (a.last.id < b.last.id ? 1 : -1));
    mount(chatList, sorted.map((c) => h('li', {
      class: c.chatId === chatId ? 'active' : '', dataset: { chat: c.chatId },
      onclick: () => { location.hash = `#/messages/${encodeURIComponent(sid)}/${encodeURIComponent(c.chatId)}`; },
    }, h('div', {}, who(c.chatJid, c.chatLid) || c.chatId),
    h('div', { class: 'last' }, (c.last.direction === 'out' ? 'You: ' : '') + summary(c.last)))));
    if (!sorted.length) chatList.appendChild(h('li', { class: 'muted' }, 'No messages yet.'));
  }

  function renderHeader() {
    const c = chats.get(chatId);
    const jid = c ? c.chatJid : (chatId && chatId.endsWith('@s.whatsapp.net') ? chatId : null);
    const lid = c ? c.chatLid : (chatId && chatId.endsWith('@lid') ? chatId : null);
    mount(header, h('h2', {}, phone(jid) || lid || chatId),
      h('div', { class: 'small muted', id: 'chat-ids' }, 'phone: ', jid || 'unknown', ' · LID: ', lid || 'unknown', ' · chat: ', chatId));
  }

  function put(m) {
    if (m.sessionId !== sid) return;
    if (!newer(m, latest.get(m.id))) return;
    latest.set(m.id, m);
    chatEntry(m);
    if (m.chatId !== chatId) return;
    const el = messageEl(m);
    const old = thread.get(m.id);
    if (old) old.replaceWith(el);
    else {
      const atBottom = threadEl.scrollHeight - threadEl.scrollTop - threadEl.clientHeight < 40;
      threadEl.appendChild(el);
      if (atBottom) threadEl.scrollTop = threadEl.scrollHeight;
    }
    thread.set(m.id, el);
  }

  // New chat: a number or JID to write to.
  const newTo = h('input', { id: 'new-chat-to', placeholder: 'phone digits or JID' });
  const newChat = h('form', {
    class: 'row', onsubmit: (e) => {
      e.preventDefault();
      let to = newTo.value.trim().replace(/[^0-9A-Za-z@._-]/g, '');
      if (/^\d+$/.test(to)) to += '@s.whatsapp.net';
      if (to) location.hash = `#/messages/${encodeURIComponent(sid)}/${encodeURIComponent(to)}`;
    },
  }, newTo, h('button', { type: 'submit', class: 'secondary' }, 'Open chat'));

  // Send box (messages:send).
  const text = h('textarea', { id: 'send-text', rows: 2, placeholder: 'Message (caption with a file)' });
  const file = h('input', { id: 'send-file', type: 'file' });
  const sendBtn = h('button', { type: 'submit', id: 'send' }, 'Send');
  const sendForm = h('form', {
    class: 'panel', id: 'send-form',
    onsubmit: async (e) => {
      e.preventDefault();
      const body = { to: chatId };
      const f = file.files && file.files[0];
      if (f) {
        const mimetype = f.type || 'application/octet-stream';
        const data = await readBase64(f);
        const kind = mimetype.split('/')[0];
        body.type = ['image', 'video', 'audio'].includes(kind) ? kind : 'document';
        body.media = { data, mimetype, fileName: f.name };
        if (text.value) body.text = text.value;
      } else {
        if (!text.value.trim()) return;
        body.text = text.value;
      }
      sendBtn.disabled = true;
      const m = await attempt(() => post(base, body));
      sendBtn.disabled = false;
      if (m) {
        text.value = '';
        file.value = '';
        if (m.chatId !== chatId) {
          location.hash = `#/messages/${encodeURIComponent(sid)}/${encodeURIComponent(m.chatId)}`;
          return;
        }
        put(m);
        renderChats();
      }
    },
  }, text, h('div', { class: 'row' }, file, h('span', { class: 'grow' }), sendBtn));

  mount(main,
    h('div', { class: 'row' }, h('h1', { class: 'grow', id: 'messages-title' }, 'Messages'),
      h('a', { href: '#/sessions/' + encodeURIComponent(sid) }, 'Session →')),
    h('div', { class: 'chat' },
      h('div', {}, newChat, chatList, note),
      h('div', {}, chatId ? [header, threadEl, ctx.can('messages:send') ? sendForm : null]
        : h('p', { class: 'muted' }, 'Choose a chat, or open one by number.'))));

  attempt(() => get('/api/v1/sessions/' + encodeURIComponent(sid))).then((s) => {
    if (s && !gone) document.getElementById('messages-title').textContent = 'Messages · ' + (s.label || s.id);
  });
  (async () => {
    const all = await attempt(() => walk(base, {}));
    if (!all || gone) return;
    all.items.forEach(chatEntry);
    if (!all.complete) note.textContent = `Showing chats of the first ${all.items.length} messages.`;
    if (chatId) {
      const mine = await attempt(() => walk(base, { chatId }));
      if (mine && !gone) mine.items.forEach(put);
      threadEl.scrollTop = threadEl.scrollHeight;
      renderHeader();
    }
    renderChats();
    threadEl.dataset.loaded = 'true';
  })();
  if (chatId) renderHeader();

  const off = ctx.stream ? ctx.stream.on((ev) => {
    if (!ev.type.startsWith('message.') || !ev.data || ev.sessionId !== sid) return;
    put(ev.data);
    renderChats();
    if (ev.data.chatId === chatId) renderHeader();
  }) : null;
  return () => { gone = true; if (off) off(); };
}

function readBase64(f) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result).replace(/^data:[^,]*,/, ''));
    r.onerror = () => reject(r.error);
    r.readAsDataURL(f);
  });
}
