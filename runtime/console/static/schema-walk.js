// What a JSON Schema says about one place in a document, for the definition editor's
// completion: the schemas that apply at a path (following $ref, allOf, anyOf, oneOf and
// if/then/else, whose conditions are tested against the plain values of the object being
// edited, so a step's `kind` picks its fields), the property names they offer and the
// values they allow. Pure data: no DOM, no CodeMirror.

function deref(root, ref) {
  if (!ref.startsWith('#/')) return undefined;
  let node = root;
  for (const segment of ref.slice(2).split('/')) node = node?.[segment.replace(/~1/g, '/').replace(/~0/g, '~')];
  return node;
}

/**
 * Whether an `if` holds for an object's plain values: true, false, or undefined when the
 * condition tests more than required names and const or enum values.
 */
export function holds(condition, values) {
  if (!condition || typeof condition !== 'object' || !values) return undefined;
  for (const name of condition.required ?? []) if (!(name in values)) return false;
  for (const [name, s] of Object.entries(condition.properties ?? {})) {
    if (!(name in values) || !s || typeof s !== 'object') continue;
    if ('const' in s && values[name] !== s.const) return false;
    if (Array.isArray(s.enum) && !s.enum.includes(values[name])) return false;
  }
  return true;
}

/** The schemas that apply to a value (`values`: its plain properties), each with the $refs followed to it. */
export function expand(root, schema, values, refs = [], out = []) {
  if (!schema || typeof schema !== 'object' || out.length > 200) return out;
  out.push({ schema, refs });
  if (typeof schema.$ref === 'string') expand(root, deref(root, schema.$ref), values, [...refs, schema.$ref], out);
  for (const s of [...(schema.allOf ?? []), ...(schema.anyOf ?? []), ...(schema.oneOf ?? [])]) expand(root, s, values, refs, out);
  if (schema.if) {
    const held = holds(schema.if, values);
    if (held !== false && schema.then) expand(root, schema.then, values, refs, out);
    if (held !== true && schema.else) expand(root, schema.else, values, refs, out);
  }
  return out;
}

/** The schemas of a child (a property name or an item index) of a value whose schemas are `entries`. */
function childSchemas(entries, segment) {
  const out = [];
  for (const { schema } of entries) {
    const own = schema.properties?.[segment];
    if (own !== undefined) out.push(own);
    else if (/^\d+$/.test(segment) && schema.items && typeof schema.items === 'object') out.push(schema.items);
    else if (schema.additionalProperties && typeof schema.additionalProperties === 'object' && !/^\d+$/.test(segment)) out.push(schema.additionalProperties);
  }
  return out;
}

/**
 * The schemas at a path of the document: `valuesAt(depth)` gives the plain values of the
 * object at the path's first `depth` segments (for the if/then of each level).
 */
export function schemasAt(root, segments, valuesAt) {
  let entries = expand(root, root, valuesAt(0));
  segments.forEach((segment, i) => {
    entries = childSchemas(entries, segment).flatMap((s) => expand(root, s, valuesAt(i + 1)));
  });
  return entries;
}

const words = (schema) => (schema && typeof schema === 'object' ? { title: schema.title, description: schema.description } : {});

/** The first title and description among a value's schemas. */
export function describe(root, schema) {
  let title;
  let description;
  for (const { schema: s } of expand(root, schema, undefined)) {
    const w = words(s);
    title ??= w.title;
    description ??= w.description;
  }
  return { title, description };
}

/** The property names the schemas offer: [{name, title, description}], in the schemas' order. */
export function propertyNames(root, entries) {
  const seen = new Map();
  for (const { schema } of entries) {
    for (const [name, s] of Object.entries(schema.properties ?? {})) {
      if (s === false) continue;
      const found = describe(root, s);
      const known = seen.get(name);
      if (!known) seen.set(name, { name, ...found });
      else {
        known.title ??= found.title;
        known.description ??= found.description;
      }
    }
  }
  return [...seen.values()];
}

/** The values the schemas allow by enumeration: enum and const values, true and false for booleans. */
export function allowedValues(entries) {
  const values = [];
  const add = (v) => {
    if (!values.some((x) => JSON.stringify(x) === JSON.stringify(v))) values.push(v);
  };
  for (const { schema } of entries) {
    for (const v of schema.enum ?? []) add(v);
    if ('const' in schema) add(schema.const);
    if (schema.type === 'boolean') [true, false].forEach(add);
  }
  return values;
}

/** Labels of enum values, from `x-enum-labels`. */
export function valueLabels(entries) {
  return Object.assign({}, ...entries.map(({ schema }) => schema['x-enum-labels'] ?? {}));
}

/** Whether the place refers to a step by its id (`next`, `ifTrue`, a branch path…): the step id schema reached through a $ref. */
export const refersToStep = (entries, segments) => segments.at(-1) !== 'id' && entries.some(({ refs }) => refs.includes('#/$defs/stepId'));
