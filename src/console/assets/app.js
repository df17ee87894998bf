// The console's shell: sign-in, the caller, navigation, the live stream.
import { ctx, get, token, setToken, clearToken, EventStream } from './api.js';
import { h, mount, installProbe } from './ui.js';
import * as signin from './signin.js';
import * as sessions from './sessions.js';
import * as session from './session.js';
import * as messages from './messages.js';
import * as events from './events.js';
import * as webhooks from './webhooks.js';
import * as keys from './keys.js';

const probe = installProbe();

const main = document.getElementById('main');
let cleanup = null;

/** A token in the fragment (`#token=...`, from `wa-gateway console`) is taken once and cleared. */
function takeFragmentToken() {
  const m = /^#token=([^&]+)/.exec(location.hash);
  if (!m) return;
  setToken(decodeURIComponent(m[1]));
  history.replaceState(null, '', location.pathname + location.search + '#/sessions');
}

const screens = [
  { name: 'Sessions', hash: '#/sessions', show: () => ctx.can('sessions:read') || ctx.isSuper },
  { name: 'Messages', hash: '#/messages', show: () => ctx.can('messages:read') },
  { name: 'Events', hash: '#/events', show: () => ctx.can('messages:read') || ctx.adminView },
  { name: 'Webhooks', hash: '#/webhooks', show: () => ctx.can('webhooks:write') },
  { name: 'API keys', hash: '#/keys', show: () => ctx.can('api_keys:write') && ctx.me.kind === 'user' },
];

function renderNav() {
  const nav = document.getElementById('nav');
  const current = location.hash || '#/sessions';
  mount(nav, screens.filter((s) => s.show()).map((s) =>
    h('a', { href: s.hash, id: 'nav-' + s.hash.slice(2), class: current.startsWith(s.hash) ? 'active' : '' }, s.name)),
  h('a', { href: '/docs', target: '_blank', rel: 'noopener' }, 'API docs'));
  const me = ctx.me;
  const who = document.getElementById('who');
  const live = h('span', { id: 'live', title: 'live event stream' }, '');
  if (ctx.stream) ctx.stream.onState((s) => { live.textContent = s === 'live' ? '● live' : '○ ' + s; });
  const parts = [me.kind === 'api_key' ? 'api-key' : me.userId];
  if (me.organizationId) parts.push('org ' + me.organizationId);
  if (me.role) parts.push(me.role);
  if (me.platformRole) parts.push(me.platformRole);
  mount(who, live, h('span', { id: 'whoami' }, parts.join(' · ')),
    h('button', { class: 'secondary', id: 'signout', onclick: signOut }, 'Sign out'));
}

function signOut() {
  clearToken();
  if (ctx.stream) ctx.stream.stop();
  ctx.stream = null;
  ctx.me = null;
  location.hash = '#/sessions';
  boot();
}

function route() {
  if (!ctx.me) return;
  if (cleanup) { try { cleanup(); } catch (_) { /* ignore */ } cleanup = null; }
  renderNav();
  const parts = (location.hash || '#/sessions').slice(2).split('/').map(decodeURIComponent);
  const [screen, a, b] = parts;
  main.replaceChildren();
  let r;
  switch (screen) {
    case 'sessions': r = a ? session.render(main, a) : sessions.render(main, probe); break;
    case 'messages': r = messages.render(main, a, b); break;
    case 'events': r = events.render(main); break;
    case 'webhooks': r = webhooks.render(main); break;
    case 'keys': r = keys.render(main); break;
    default: r = sessions.render(main, probe);
  }
  cleanup = typeof r === 'function' ? r : null;
}

async function boot() {
  takeFragmentToken();
  mount(document.getElementById('nav'));
  mount(document.getElementById('who'));
  if (!token()) {
    signin.render(main, boot);
    return;
  }
  try {
    ctx.me = await get('/api/v1/me');
  } catch (e) {
    clearToken();
    signin.render(main, boot, `${e.code}: ${e.message}`);
    return;
  }
  const streamPath = ctx.can('messages:read') ? '/api/v1/events' : ctx.adminView ? '/api/v1/admin/events' : null;
  if (streamPath) {
    ctx.stream = new EventStream(streamPath);
    ctx.stream.start();
  }
  route();
}

window.addEventListener('hashchange', () => { takeFragmentToken(); route(); });
window.addEventListener('wag:unauthorized', () => {
  if (!ctx.me) return;
  clearToken();
  if (ctx.stream) ctx.stream.stop();
  ctx.stream = null;
  ctx.me = null;
  signin.render(main, boot, 'Your token was refused (expired or revoked): sign in again.');
});

boot();
