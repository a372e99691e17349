// Run one operation of a saved connection (n8n's "execute node"): pick the connection and
// the operation, fill its parameters (a form from the operation's parameter schema), give
// one optional document, and see each result with its output documents or its error.
import { api } from '../api.js';
import { h, put, badge, table, duration, toBase64 } from '../dom.js';
import { schemaFields, validate } from '../form.js';
import { listHash } from './lists.js';

const flat = (schema) => Object.values(schema?.properties ?? {}).every((p) => !['object', 'array'].includes(Array.isArray(p.type) ? p.type[0] : p.type));

/**
 * Picking a connection or an operation opens it (a new hash, so the page can be linked); a
 * change event that picks the one shown (a script's select, a keyboard re-pick) changes
 * nothing, or the page would be drawn again under what the user is typing.
 */
export async function operationsPage(ui, query) {
  const { connections } = await api('GET', '/connections');
  const connection = connections.find((c) => c.id === query.get('connection')) ?? connections[0];
  const choose = h('select', { id: 'op-connection', onchange: () => choose.value !== connection?.id && (location.hash = listHash('#/operations', { connection: choose.value })) }, connections.map((c) => h('option', { value: c.id, selected: c.id === connection?.id }, `${c.name} (${c.connector})`)));
  if (!connection) {
    ui.page('Operations', h('p', { class: 'muted' }, 'No connection yet: create one on the Connections page first.'));
    return;
  }
  const connector = await api('GET', `/connectors/${encodeURIComponent(connection.connector)}`);
  const operation = connector.operations.find((o) => o.id === query.get('operation')) ?? connector.operations[0];
  const pick = h('select', { id: 'op-operation', onchange: () => pick.value !== operation?.id && (location.hash = listHash('#/operations', { connection: connection.id, operation: pick.value })) }, connector.operations.map((o) => h('option', { value: o.id, selected: o.id === operation?.id }, `${o.name} (${o.id})`)));
  const pickers = h('div', { class: 'filters' }, h('label', { for: 'op-connection' }, 'Connection', choose), h('label', { for: 'op-operation' }, 'Operation', pick));
  if (!operation) {
    ui.page('Operations', pickers, h('p', { class: 'muted' }, `The connector ${connector.id} has no operations.`));
    return;
  }
  const schema = connector.operationSchemas[operation.id] ?? { type: 'object' };
  ui.page('Operations', pickers, operation.description ? h('p', { class: 'hint' }, operation.description) : null, operationForm(ui, connection, operation, schema));
}

/** The parameters: fields from the schema, or JSON when the schema nests objects or lists. */
function parametersInput(schema) {
  if (flat(schema)) {
    const fields = schemaFields(schema, null);
    return { element: fields.element, read: () => ({ value: fields.read().config }), check: (v) => validate(schema, v), show: (p) => fields.showProblems(p) };
  }
  const text = h('textarea', { id: 'op-parameters', spellcheck: 'false' }, '{}');
  const error = h('ul', { class: 'problems', id: 'op-parameters-problems' });
  const element = h('div', { class: 'field' }, h('label', { for: 'op-parameters' }, 'Parameters (JSON)'), text, error);
  const show = (problems) => (error.replaceChildren(...problems.map((p) => h('li', {}, `${p.path || '/'}: ${p.message}`))), problems.length ? text : null);
  const read = () => {
    try {
      return { value: JSON.parse(text.value || '{}') };
    } catch (e) {
      return { problems: [{ path: '', message: `not JSON: ${e.message}` }] };
    }
  };
  return { element, read, check: () => [], show };
}

function documentInput() {
  const body = h('textarea', { id: 'op-body', spellcheck: 'false', placeholder: 'optional: the body of the input document' });
  const file = h('input', { type: 'file', id: 'op-file' });
  const props = h('textarea', { id: 'op-properties', spellcheck: 'false', placeholder: 'name=value, one a line', class: 'short' });
  const element = h(
    'fieldset',
    {},
    h('legend', {}, 'Input document'),
    h('div', { class: 'field' }, h('label', { for: 'op-body' }, 'Body'), body),
    h('div', { class: 'field' }, h('label', { for: 'op-file' }, 'or a file as the body'), file),
    h('div', { class: 'field' }, h('label', { for: 'op-properties' }, 'Properties'), props),
  );
  async function read() {
    const properties = Object.fromEntries(props.value.split('\n').map((l) => l.trim()).filter(Boolean).map((l) => [l.slice(0, l.indexOf('=') < 0 ? l.length : l.indexOf('=')), l.indexOf('=') < 0 ? '' : l.slice(l.indexOf('=') + 1)]));
    const some = Object.keys(properties).length > 0 ? { properties } : {};
    const picked = file.files?.[0];
    if (picked) return { ...some, body: toBase64(new Uint8Array(await picked.arrayBuffer())), encoding: 'base64' };
    return { ...some, ...(body.value ? { body: body.value } : {}) };
  }
  return { element, read };
}

function operationForm(ui, connection, operation, schema) {
  const parameters = parametersInput(schema);
  const doc = documentInput();
  const output = h('div', { id: 'op-results', 'aria-live': 'polite' });
  const button = h('button', { type: 'submit', id: 'op-run' }, `Run ${operation.name}`);
  const run = async (event) => {
    event.preventDefault();
    const read = parameters.read();
    const problems = read.problems ?? parameters.check(read.value);
    const first = parameters.show(problems);
    if (problems.length > 0) {
      ui.say(`The parameters have ${problems.length} problem(s).`, true);
      first?.focus();
      return;
    }
    button.disabled = true;
    put(output, 'replaceChildren', h('p', { class: 'panel' }, h('progress', { 'aria-label': 'Running' }), ` Running ${operation.id} on ${connection.name}…`));
    try {
      const answer = await api('POST', `/connections/${encodeURIComponent(connection.id)}/operations/${encodeURIComponent(operation.id)}`, { parameters: read.value, documents: [await doc.read()] });
      put(output, 'replaceChildren', results(answer));
      ui.say(`${operation.id}: ${answer.results.map((r) => r.status).join(', ')}.`);
    } catch (e) {
      parameters.show(ui.problemsOf(e).map((p) => ({ ...p, path: p.path.replace(/^\/body\/parameters/, '') })));
      put(output, 'replaceChildren', h('div', { class: 'panel error', id: 'op-refused', role: 'alert' }, h('strong', {}, 'The operation did not run: '), ui.errorText(e)));
      ui.say(ui.errorText(e), true);
    } finally {
      button.disabled = false;
      output.scrollIntoView({ block: 'nearest' });
    }
  };
  return h(
    'div',
    {},
    ui.unsaved.watch(h('form', { novalidate: true, id: 'operation-form', onsubmit: run }, h('h2', {}, 'Parameters'), parameters.element, doc.element, h('div', { class: 'actions' }, button))),
    h('h2', {}, 'Results'),
    output,
  );
}

function results(answer) {
  return h(
    'div',
    { class: 'panel' },
    h('p', {}, `${answer.operation} (${answer.connector}): ${answer.results.length} result(s) in ${duration(answer.durationMs)}`),
    h('ol', { class: 'results' }, answer.results.map((r) =>
      h(
        'li',
        { 'data-result': r.status },
        badge(r.status),
        r.code ? h('strong', {}, ` ${r.code}`) : null,
        r.message ? h('span', { class: 'result-message' }, ` ${r.message}`) : null,
        r.properties ? propertyTable(r.properties) : null,
        (r.documents ?? []).map((d, i) => outputDocument(d, i)),
      ),
    )),
  );
}

function propertyTable(properties) {
  const entries = Object.entries(properties);
  return entries.length === 0 ? h('p', { class: 'muted' }, 'No properties.') : table(['property', 'value'], entries.map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, v))));
}

/** A body as a person reads it: JSON pretty-printed, text as text, bytes as size and a hex head. */
export function bodyView(d) {
  if (d.body === undefined) return h('p', { class: 'muted' }, d.bodyOmitted ? `Body not shown (${d.size} bytes): ${d.bodyOmitted}` : 'No body.');
  const bytes = Uint8Array.from(atob(d.body), (c) => c.charCodeAt(0));
  let text = null;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    if (bytes.some((b) => b < 0x20 && (b < 0x09 || b > 0x0d))) text = null;
  } catch {
    text = null;
  }
  if (text === null) {
    const hex = [...bytes.subarray(0, 64)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    return h('div', { class: 'doc-body binary' }, `binary, ${bytes.length} bytes: ${hex}${bytes.length > 64 ? ' …' : ''}`);
  }
  try {
    return h('pre', { class: 'doc-body json' }, JSON.stringify(JSON.parse(text), null, 2));
  } catch {
    return h('pre', { class: 'doc-body text' }, text);
  }
}

function outputDocument(d, index) {
  return h('section', { class: 'output-document', 'aria-label': `Output document ${index + 1}` }, h('h3', {}, `Output document ${index + 1} (${d.size} bytes)`), propertyTable(d.properties), bodyView(d));
}
