// Sign-in: paste a login JWT or an api-key. It is kept in sessionStorage
// only (gone when the tab closes) and sent as a bearer token.
import { setToken } from './api.js';
import { h, mount } from './ui.js';

export function render(main, done, error) {
  const input = h('textarea', { id: 'token-input', rows: 4, placeholder: 'eyJ... or wa_...', autocomplete: 'off', spellcheck: 'false' });
  const submit = (e) => {
    e.preventDefault();
    const t = input.value.trim();
    if (!t) return;
    setToken(t);
    done();
  };
  mount(main, h('div', { class: 'panel', id: 'signin' },
    h('h1', {}, 'Sign in'),
    h('p', { class: 'muted' },
      'Paste a login JWT (from your frontend, or `wa-gateway console` / `wa-gateway token` on the embedded issuer) or an api-key. ' +
      'It stays in this tab only (sessionStorage).'),
    error ? h('p', { class: 'error', id: 'signin-error' }, error) : null,
    h('form', { onsubmit: submit }, input, h('div', { class: 'row' }, h('button', { type: 'submit', id: 'signin-button' }, 'Sign in')))));
  input.focus();
}
