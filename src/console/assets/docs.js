// The API reference: /openapi.json rendered readably, as text only.
import { h, mount, installProbe } from './ui.js';

installProbe();

function deref(doc, v) {
  let cur = v;
  for (let i = 0; cur && cur.$ref && i < 10; i++) {
    cur = cur.$ref.replace(/^#\//, '').split('/').reduce((o, k) => (o ? o[k] : undefined), doc);
  }
  return cur || {};
}

function schemaName(s) {
  if (!s) return '';
  if (s.$ref) return s.$ref.split('/').pop();
  if (s.type === 'array' && s.items) return schemaName(s.items) + '[]';
  return Array.isArray(s.type) ? s.type.join(' | ') : (s.type || 'object');
}

function operation(doc, method, path, op) {
  const params = (op.parameters || []).map((p) => deref(doc, p));
  const body = op.requestBody && op.requestBody.content ? Object.entries(op.requestBody.content) : [];
  const auth = (op.security || []).length ? 'Bearer token' : 'No auth';
  return h('details', { class: 'panel', id: op.operationId },
    h('summary', {}, h('span', { class: 'method ' + method }, method.toUpperCase()), h('code', {}, path), '  ',
      h('span', { class: 'muted' }, op.summary || '')),
    op.description ? h('p', {}, op.description) : null,
    h('p', { class: 'small muted' }, auth, op['x-non-api'] ? ' · not an API route' : '', ' · operationId ', op.operationId),
    params.length ? [h('h2', {}, 'Parameters'), h('table', {}, h('tbody', {}, params.map((p) => h('tr', {},
      h('td', { class: 'mono' }, p.name), h('td', { class: 'small' }, p.in, p.required ? ', required' : ''),
      h('td', { class: 'small' }, schemaName(p.schema)), h('td', { class: 'small' }, p.description || '')))))] : null,
    body.length ? [h('h2', {}, 'Request body'), body.map(([ct, m]) => h('p', {}, h('code', {}, ct), ' ', h('a', { href: '#schema-' + schemaName(m.schema) }, schemaName(m.schema))))] : null,
    h('h2', {}, 'Responses'),
    h('table', {}, h('tbody', {}, Object.entries(op.responses || {}).map(([status, r]) => {
      const resp = deref(doc, r);
      const content = Object.entries(resp.content || {});
      return h('tr', {}, h('td', { class: 'mono' }, status), h('td', {}, resp.description || ''),
        h('td', { class: 'small' }, content.map(([ct, m]) => h('div', {}, ct, ' ', schemaName(m.schema)))));
    }))));
}

async function main() {
  const el = document.getElementById('main');
  let doc;
  try {
    const r = await fetch('/openapi.json');
    doc = await r.json();
  } catch (e) {
    mount(el, h('p', { class: 'error' }, 'Could not load /openapi.json: ' + e.message));
    return;
  }
  const byTag = new Map((doc.tags || []).map((t) => [t.name, []]));
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags && op.tags[0]) || 'other';
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operation(doc, method, path, op));
    }
  }
  const tagInfo = new Map((doc.tags || []).map((t) => [t.name, t.description]));
  const schemas = Object.entries((doc.components && doc.components.schemas) || {});
  mount(el,
    h('h1', {}, `${doc.info.title} ${doc.info.version}`),
    h('p', {}, doc.info.description || ''),
    h('p', { class: 'small muted' }, 'OpenAPI ', doc.openapi, ' · ', h('a', { href: '/openapi.json' }, 'raw JSON')),
    [...byTag.entries()].map(([tag, ops]) => [h('h2', { id: 'tag-' + tag }, tag), h('p', { class: 'muted small' }, tagInfo.get(tag) || ''), ops]),
    h('h2', {}, 'Schemas'),
    schemas.map(([name, s]) => h('details', { class: 'panel', id: 'schema-' + name },
      h('summary', {}, h('code', {}, name)), h('pre', {}, JSON.stringify(s, null, 2)))));
  document.documentElement.dataset.ready = 'true';
}

main();
