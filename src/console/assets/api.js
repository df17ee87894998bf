// The API client: the bearer token (sessionStorage only), JSON requests,
// authenticated images as blob: URLs, and the live event stream read with
// fetch() (EventSource cannot send an Authorization header).

const KEY = 'wag.token';

export function token() { return sessionStorage.getItem(KEY); }
export function setToken(t) { sessionStorage.setItem(KEY, t); }
export function clearToken() { sessionStorage.removeItem(KEY); }

/** An error answered by the gateway, in its envelope. */
export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || 'http_' + status;
    this.details = e.details || {};
  }
}

function headers(extra) {
  const h = new Headers(extra || {});
  const t = token();
  if (t) h.set('Authorization', 'Bearer ' + t);
  return h;
}

/** Sends a request; answers the parsed JSON (or null for 204). */
export async function api(method, path, body, extraHeaders) {
  const init = { method, headers: headers(extraHeaders), cache: 'no-store' };
  if (body !== undefined) {
    init.headers.set('Content-Type', 'application/json');
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  if (r.status === 204) return null;
  let json = null;
  try { json = await r.json(); } catch (_) { json = null; }
  if (!r.ok) {
    const err = new ApiError(r.status, json);
    if (r.status === 401) window.dispatchEvent(new CustomEvent('wag:unauthorized'));
    throw err;
  }
  return json;
}

export const get = (p) => api('GET', p);
export const post = (p, b) => api('POST', p, b === undefined ? {} : b);
export const patch = (p, b) => api('PATCH', p, b);
export const del = (p) => api('DELETE', p);

/** A query string from an object, skipping empty values. */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') u.set(k, v);
  }
  const s = u.toString();
  return s ? '?' + s : '';
}

/** Fetches an image that needs the token; answers a blob: URL (revoke it). */
export async function blobUrl(path, accept) {
  const r = await fetch(path, { headers: headers({ Accept: accept || 'image/png' }), cache: 'no-store' });
  if (!r.ok) {
    let json = null;
    try { json = await r.json(); } catch (_) { json = null; }
    throw new ApiError(r.status, json);
  }
  return URL.createObjectURL(await r.blob());
}

/**
 * The live event stream (`Accept: text/event-stream`), parsed by hand:
 * `id:`, `event:`, `data:` lines, frames ended by a blank line, `:` comments.
 * Reconnects with `Last-Event-ID` so nothing is lost while retained.
 */
export class EventStream {
  constructor(path) {
    this.path = path;
    this.lastId = null;
    this.listeners = new Set();
    this.stateListeners = new Set();
    this.controller = null;
    this.stopped = true;
    this.state = 'closed';
    this.retryMs = 1000;
  }

  on(fn) { this.listeners.add(fn); return () => this.listeners.delete(fn); }
  onState(fn) { this.stateListeners.add(fn); fn(this.state); return () => this.stateListeners.delete(fn); }

  setState(s) {
    this.state = s;
    for (const fn of this.stateListeners) fn(s);
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop();
  }

  stop() {
    this.stopped = true;
    if (this.controller) this.controller.abort();
    this.setState('closed');
  }

  async loop() {
    while (!this.stopped) {
      try {
        await this.once();
        this.retryMs = 1000;
      } catch (e) {
        if (this.stopped) return;
        if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
          this.setState('refused');
          this.stopped = true;
          return;
        }
      }
      if (this.stopped) return;
      this.setState('reconnecting');
      await new Promise((r) => setTimeout(r, this.retryMs));
      this.retryMs = Math.min(this.retryMs * 2, 15000);
    }
  }

  async once() {
    this.controller = new AbortController();
    const h = headers({ Accept: 'text/event-stream' });
    if (this.lastId) h.set('Last-Event-ID', this.lastId);
    const r = await fetch(this.path, { headers: h, signal: this.controller.signal, cache: 'no-store' });
    if (!r.ok || !r.body) {
      let json = null;
      try { json = await r.json(); } catch (_) { json = null; }
      throw new ApiError(r.status, json);
    }
    this.setState('live');
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    let frame = { id: null, event: 'message', data: [] };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        let line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.endsWith('\r')) line = line.slice(0, -1);
        if (line === '') {
          if (frame.data.length) this.dispatch(frame);
          frame = { id: null, event: 'message', data: [] };
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? '' : line.slice(colon + 1);
        if (val.startsWith(' ')) val = val.slice(1);
        if (field === 'id') frame.id = val;
        else if (field === 'event') frame.event = val;
        else if (field === 'data') frame.data.push(val);
      }
    }
  }

  dispatch(frame) {
    if (frame.id) this.lastId = frame.id;
    let event;
    try { event = JSON.parse(frame.data.join('\n')); } catch (_) { return; }
    for (const fn of this.listeners) {
      try { fn(event, frame.event); } catch (e) { console.warn('event listener failed', e); }
    }
  }
}

/**
 * Who is signed in (GET /api/v1/me) and the one live stream every screen
 * listens to. The console hides what the caller may not do; the API still
 * decides.
 */
export const ctx = {
  me: null,
  stream: null,
  can(perm) { return !!(this.me && (this.me.permissions || []).includes(perm)); },
  get isSuper() { return !!(this.me && this.me.platformRole === 'super_admin'); },
  get hasOrg() { return !!(this.me && this.me.organizationId); },
  /** Sessions come from the admin list (every organization). */
  get adminView() { return this.isSuper && !this.hasOrg; },
};
