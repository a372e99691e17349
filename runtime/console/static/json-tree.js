// JSON pointers and places in a JSON text, over the syntax tree CodeMirror's JSON
// language keeps (Lezer's JSON grammar: Object, Array, Property, PropertyName, String,
// Number, True, False, Null, and ⚠ for what does not parse). The definition editor uses
// them both ways: a problem's pointer (`/steps/2/connection`, from the runtime or the
// schema) to the text it names, and the cursor to the pointer of what it is in (for
// completion). Pure functions of a tree and the document's text: no DOM.

const valueNames = new Set(['Object', 'Array', 'String', 'Number', 'True', 'False', 'Null']);
export const isValue = (node) => valueNames.has(node.name);

export function escapeSegment(segment) {
  return String(segment).replace(/~/g, '~0').replace(/\//g, '~1');
}

/** A pointer's segments: '' and '/' are the whole document. */
export function segmentsOf(pointer) {
  if (!pointer || pointer === '/') return [];
  return pointer.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

export const pointerOf = (segments) => segments.map((s) => `/${escapeSegment(s)}`).join('');

function children(node) {
  const out = [];
  for (let c = node.firstChild; c; c = c.nextSibling) out.push(c);
  return out;
}

const textOf = (doc, node) => doc.sliceString(node.from, node.to);

/** A property's name: its string's value (or its raw text between the quotes when it does not parse). */
export function nameOf(doc, property) {
  const name = property.getChild('PropertyName');
  if (!name) return null;
  const text = textOf(doc, name);
  try {
    return JSON.parse(text);
  } catch {
    return text.replace(/^"|"$/g, '');
  }
}

const propertyValue = (property) => children(property).find(isValue) ?? null;
const arrayItems = (array) => children(array).filter(isValue);
const propertiesOf = (object) => children(object).filter((c) => c.name === 'Property');

/** The document's top value (null for an empty or broken document). */
export function rootValue(tree) {
  return children(tree.topNode).find(isValue) ?? null;
}

/**
 * What a pointer names: {node, property, found}. `node` is the value (or, for a name
 * whose value is missing, the property); when a segment is not in the text, the deepest
 * node that is, with found false (a required field that is missing names its object).
 */
export function locate(tree, doc, pointer) {
  let node = rootValue(tree);
  let property = null;
  if (!node) return null;
  for (const segment of segmentsOf(pointer)) {
    let next = null;
    let holder = null;
    if (node.name === 'Object') {
      holder = propertiesOf(node).find((p) => nameOf(doc, p) === segment) ?? null;
      next = holder && propertyValue(holder);
    } else if (node.name === 'Array' && /^\d+$/.test(segment)) {
      next = arrayItems(node)[Number(segment)] ?? null;
    }
    if (!next) return holder ? { node: holder, property: holder, found: false } : { node, property, found: false };
    node = next;
    property = holder;
  }
  return { node, property, found: true };
}

/**
 * The text range a problem at `pointer` is shown on: the property (name and value) or
 * the item it names, cut to its first line when it spans more (an object's problem marks
 * its opening line, not the whole object).
 */
export function rangeOf(tree, doc, pointer) {
  const at = locate(tree, doc, pointer);
  if (!at) return { from: 0, to: Math.min(doc.length, doc.line(1).to) };
  const whole = at.found && at.property ? at.property : at.node;
  const from = whole.from;
  const to = Math.min(whole.to, doc.lineAt(from).to);
  return { from, to: to > from ? to : Math.min(doc.length, from + 1) };
}

/** The text at a pointer (null when the pointer is not in the text): to tell when it changed. */
export function textAt(tree, doc, pointer) {
  const at = locate(tree, doc, pointer);
  return at?.found ? textOf(doc, at.node) : null;
}

/** The segments of the value `node` is (or is in), from the document's top. */
export function pathOf(doc, node) {
  const segments = [];
  for (let n = node; n && n.parent; n = n.parent) {
    const parent = n.parent;
    if (!isValue(n)) continue;
    if (parent.name === 'Property') segments.unshift(nameOf(doc, parent));
    else if (parent.name === 'Array') segments.unshift(String(arrayItems(parent).findIndex((c) => c.from === n.from)));
  }
  return segments;
}

/** The innermost object or array that holds position `pos`, or null. */
export function containerAt(tree, pos) {
  for (let n = tree.resolveInner(pos, -1); n; n = n.parent) {
    if ((n.name === 'Object' || n.name === 'Array') && n.from < pos) return n;
  }
  return null;
}

/** An object's properties whose values are plain (strings, numbers, booleans, null): what `if` conditions test. */
export function literalsOf(doc, object) {
  const out = {};
  if (!object || object.name !== 'Object') return out;
  for (const p of propertiesOf(object)) {
    const value = propertyValue(p);
    if (!value || value.name === 'Object' || value.name === 'Array') continue;
    try {
      out[nameOf(doc, p)] = JSON.parse(textOf(doc, value));
    } catch {
      // a value still being typed
    }
  }
  return out;
}

/** The names an object already has. */
export function namesOf(doc, object) {
  return object && object.name === 'Object' ? propertiesOf(object).map((p) => nameOf(doc, p)) : [];
}

/** How many items of an array come before `pos` (the index of an item typed there). */
export function indexAt(array, pos) {
  return arrayItems(array).filter((c) => c.to <= pos).length;
}
