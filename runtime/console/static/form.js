// A connection form generated from a connector's connection schema and its annotations
// (schemas/connection-schema.schema.json): x-order, x-group/x-groups, x-help, x-unit,
// x-secret, x-enum-labels, defaults, enums and required marks. Secrets follow "Click to
// Set": a set secret shows as set (never its value), a button replaces it, leaving it
// alone keeps it (the field is left out of the config sent).
import { h, put } from './dom.js';

let serial = 0;

/** The schema's fields in display order, grouped: [{group?, fields: [[name, prop]]}]. */
function layout(schema) {
  const props = Object.entries(schema.properties ?? {}).sort(([a, x], [b, y]) => (x['x-order'] ?? 1e9) - (y['x-order'] ?? 1e9) || a.localeCompare(b));
  const groups = schema['x-groups'] ?? [];
  const known = new Set(groups.map((g) => g.id));
  const sections = [{ fields: props.filter(([, p]) => !known.has(p['x-group'])) }];
  for (const group of groups) sections.push({ group, fields: props.filter(([, p]) => p['x-group'] === group.id) });
  return sections.filter((s) => s.fields.length > 0);
}

const typeOf = (prop) => (Array.isArray(prop.type) ? prop.type.find((t) => t !== 'null') : prop.type);

// The runtime's wording (runtime/sdk/json-schema.ts): the field by its title, what it must be in words.
const typeWords = { string: 'text', number: 'a number', integer: 'a whole number', boolean: 'true or false', object: 'an object', array: 'a list' };
const formatWords = { uri: 'URL', email: 'email address', hostname: 'host name' };
const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
const withUnit = (limit, prop) => (prop['x-unit'] ? `${limit} ${prop['x-unit']}` : String(limit));

function oneOfValues(values) {
  const shown = values.map((v) => JSON.stringify(v));
  return values.length <= 5 ? `must be one of: ${shown.join(', ')}` : `must be one of the ${values.length} allowed values, such as ${shown.slice(0, 3).join(', ')}`;
}

function patternPhrase(prop) {
  if (prop['x-error']) return prop['x-error'];
  return prop.description ? `is not in the expected form (${prop.description})` : `must match the pattern ${prop.pattern}`;
}

function hasType(type, value) {
  if (type === 'integer') return Number.isInteger(value);
  if (type === 'number') return typeof value === 'number' && !Number.isNaN(value);
  if (type === 'string' || type === 'boolean') return typeof value === type;
  return true;
}

/** What is wrong with one string value, in the runtime's words. */
function textPhrases(prop, value) {
  const out = [];
  const length = [...value].length;
  if (prop.minLength !== undefined && length < prop.minLength) out.push(prop.minLength === 1 ? 'must not be empty' : `must be at least ${plural(prop.minLength, 'character')} long`);
  if (prop.maxLength !== undefined && length > prop.maxLength) out.push(`must be at most ${plural(prop.maxLength, 'character')} long`);
  if (prop.pattern !== undefined && !new RegExp(prop.pattern, 'u').test(value)) out.push(patternPhrase(prop));
  if (prop.format === 'uri' && !URL.canParse?.(value) && !/^[a-z][a-z0-9+.-]*:/i.test(value)) out.push(prop['x-error'] ?? `must be a valid ${formatWords[prop.format]}`);
  return out;
}

/** What is wrong with one number value, in the runtime's words. */
function numberPhrases(prop, value) {
  const out = [];
  if (prop.minimum !== undefined && value < prop.minimum) out.push(`must be at least ${withUnit(prop.minimum, prop)}`);
  if (prop.maximum !== undefined && value > prop.maximum) out.push(`must be at most ${withUnit(prop.maximum, prop)}`);
  if (prop.exclusiveMinimum !== undefined && value <= prop.exclusiveMinimum) out.push(`must be more than ${withUnit(prop.exclusiveMinimum, prop)}`);
  if (prop.exclusiveMaximum !== undefined && value >= prop.exclusiveMaximum) out.push(`must be less than ${withUnit(prop.exclusiveMaximum, prop)}`);
  return out;
}

/** The subset of JSON Schema a connection schema uses, with the runtime's wording. */
export function validate(schema, config, secretsKept = new Set()) {
  const problems = [];
  const label = (name) => `"${schema.properties?.[name]?.title ?? name}"`;
  for (const name of schema.required ?? []) {
    if (config[name] === undefined && !secretsKept.has(name)) problems.push({ path: '/' + name, message: `${label(name)} is required`, keyword: 'required' });
  }
  for (const [name, value] of Object.entries(config)) {
    const prop = schema.properties?.[name];
    const path = '/' + name;
    if (!prop) {
      if (schema.additionalProperties === false) problems.push({ path, message: `"${name}" is not a known field`, keyword: 'additionalProperties' });
      continue;
    }
    const type = typeOf(prop);
    const phrases = [];
    if (!hasType(type, value)) phrases.push(`must be ${typeWords[type]}`);
    if (prop.enum && !prop.enum.includes(value)) phrases.push(oneOfValues(prop.enum));
    if (typeof value === 'string') phrases.push(...textPhrases(prop, value));
    if (typeof value === 'number' && !Number.isNaN(value)) phrases.push(...numberPhrases(prop, value));
    for (const phrase of phrases) problems.push({ path, message: `${label(name)} ${phrase}` });
  }
  return problems;
}

/**
 * Builds the fields. `connection` (a ConnectionView) pre-fills them; without it, the
 * schema's defaults do. Returns {element, read() → {config, kept}, showProblems(problems)}.
 */
export function schemaFields(schema, connection) {
  const required = new Set(schema.required ?? []);
  const fields = new Map();
  const base = `f${++serial}`;

  function field(name, prop) {
    const id = `${base}-${name}`;
    const hintIds = [];
    const hints = [];
    if (prop.description) hints.push(h('p', { class: 'hint', id: `${id}-desc` }, prop.description)), hintIds.push(`${id}-desc`);
    if (prop['x-help']) hints.push(h('p', { class: 'hint', id: `${id}-help` }, prop['x-help'])), hintIds.push(`${id}-help`);
    const errorId = `${id}-error`;
    const error = h('p', { class: 'field-error', id: errorId, hidden: true });
    const label = [prop.title ?? name, required.has(name) ? h('span', { class: 'required', 'aria-hidden': 'true' }, '*') : null];
    const saved = connection?.config?.[name];
    const value = saved !== undefined ? saved : connection ? undefined : prop.default;
    const type = typeOf(prop);
    const common = { id, name, 'aria-describedby': hintIds.join(' ') || undefined, required: required.has(name) && !prop['x-secret'] ? true : undefined, 'data-field': name };
    const wrap = h('div', { class: 'field', 'data-field-wrap': name });
    let read;

    if (prop['x-secret']) {
      const isSet = connection?.secrets?.['/' + name] === true;
      const slot = h('div', {});
      let input = null;
      const showInput = (focus) => {
        input = h('input', { ...common, type: 'password', autocomplete: 'new-password', spellcheck: 'false', required: required.has(name) ? true : undefined });
        const keep = isSet ? h('button', { type: 'button', class: 'secondary', 'aria-label': `Keep the current ${prop.title ?? name}`, onclick: () => showSet(true) }, 'Keep the current value') : null;
        put(slot, 'replaceChildren', input, ' ', keep);
        if (focus) input.focus();
      };
      const showSet = (focus) => {
        input = null;
        const replace = h('button', { type: 'button', class: 'secondary', id, 'aria-label': `Replace ${prop.title ?? name}`, 'aria-describedby': `${id}-state`, onclick: () => showInput(true) }, 'Replace');
        put(slot, 'replaceChildren', h('span', { class: 'secret-set', id: `${id}-state` }, 'Set (hidden)'), replace);
        if (focus) replace.focus();
      };
      if (isSet) showSet(false);
      else showInput(false);
      read = () => (input === null ? { kept: true } : input.value === '' ? {} : { value: input.value });
      put(wrap, 'append', h('label', { for: id }, label), slot);
    } else if (prop.enum) {
      const labels = prop['x-enum-labels'] ?? {};
      const select = h('select', common, required.has(name) && value !== undefined ? null : h('option', { value: '' }, '—'), prop.enum.map((v) => h('option', { value: String(v), selected: v === value ? true : undefined }, labels[v] ?? String(v))));
      read = () => {
        if (select.value === '') return {};
        const v = prop.enum.find((x) => String(x) === select.value);
        return { value: v };
      };
      put(wrap, 'append', h('label', { for: id }, label), select);
    } else if (type === 'boolean') {
      const box = h('input', { ...common, type: 'checkbox', required: undefined, checked: value === true });
      read = () => ({ value: box.checked });
      put(wrap, 'append', h('label', { for: id, class: 'check' }, box, ' ', label));
    } else if (type === 'integer' || type === 'number') {
      const input = h('input', { ...common, type: 'number', inputmode: type === 'integer' ? 'numeric' : 'decimal', step: type === 'integer' ? '1' : 'any', min: prop.minimum, max: prop.maximum, value: value ?? '' });
      read = () => (input.value.trim() === '' ? {} : { value: Number(input.value) });
      put(wrap, 'append', h('label', { for: id }, label), input, prop['x-unit'] ? h('span', { class: 'unit' }, prop['x-unit']) : null);
    } else {
      const input = h('input', { ...common, type: 'text', spellcheck: 'false', autocomplete: 'off', value: value ?? '' });
      read = () => (input.value === '' ? {} : { value: input.value });
      put(wrap, 'append', h('label', { for: id }, label), input, prop['x-unit'] ? h('span', { class: 'unit' }, prop['x-unit']) : null);
    }
    put(wrap, 'append', ...hints, error);
    fields.set(name, { wrap, error, id, read });
    return wrap;
  }

  const element = h('div', { class: 'schema-fields' }, layout(schema).map(({ group, fields: list }) => {
    const inner = list.map(([name, prop]) => field(name, prop));
    return group ? h('fieldset', {}, h('legend', {}, group.title ?? group.id), group.description ? h('p', { class: 'hint' }, group.description) : null, inner) : inner;
  }));
  const general = h('ul', { class: 'problems', hidden: true });
  element.append(general);

  return {
    element,
    read() {
      const config = {};
      const kept = new Set();
      for (const [name, f] of fields) {
        const r = f.read();
        if (r.kept) kept.add(name);
        else if ('value' in r) config[name] = r.value;
      }
      return { config, kept };
    },
    /** Shows problems next to their fields (by JSON pointer); returns the first invalid control. */
    showProblems(problems) {
      for (const f of fields.values()) {
        f.wrap.classList.remove('invalid');
        f.error.hidden = true;
        f.error.textContent = '';
        document.getElementById(f.id)?.removeAttribute('aria-invalid');
      }
      general.replaceChildren();
      general.hidden = true;
      let first = null;
      for (const p of problems) {
        const name = p.path.split('/')[1];
        const f = name !== undefined ? fields.get(name) : undefined;
        if (!f) {
          general.append(h('li', {}, `${p.path || 'configuration'}: ${p.message}`));
          general.hidden = false;
          continue;
        }
        f.wrap.classList.add('invalid');
        f.error.hidden = false;
        f.error.textContent = f.error.textContent ? `${f.error.textContent}; ${p.message}` : p.message;
        const control = document.getElementById(f.id);
        if (control) {
          control.setAttribute('aria-invalid', 'true');
          const described = new Set((control.getAttribute('aria-describedby') ?? '').split(' ').filter(Boolean));
          described.add(f.error.id);
          control.setAttribute('aria-describedby', [...described].join(' '));
          first ??= control;
        }
      }
      return first;
    },
  };
}
