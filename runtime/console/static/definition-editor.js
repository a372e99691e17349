// The definition editor: CodeMirror 6 (vendor-codemirror.js, bundled at build) on a
// process definition's JSON, checked as you type against schemas/process.schema.json by
// the schema's standalone ajv validator (vendor-process-schema.js, the runtime's options
// and wording), with the runtime's own problems (the answer to a Test run or a Deploy)
// shown at the lines their JSON pointers name, and completion from the schema (field
// names by the step's kind, enum values) and from the account (step ids, connections,
// their operations, deployed processes).
//
// CSP: the editor lives in a shadow root. CodeMirror's styles (style-mod) then go into a
// constructed stylesheet adopted by that root, through the CSSOM, which the console's
// `style-src 'self'` does not govern; in a document root style-mod would write a <style>
// element, which that policy refuses. The editor's own rules come from /editor.css,
// linked inside the root. CodeMirror sets element styles through `element.style` only.
import { basicSetup, EditorView, EditorState, StateEffect, keymap, json, jsonParseLinter, linter, lintGutter, autocompletion, syntaxTree, ensureSyntaxTree } from './vendor-codemirror.js';
import { processSchema, schemaProblems } from './vendor-process-schema.js';
import { h } from './dom.js';
import { containerAt, indexAt, literalsOf, locate, namesOf, pathOf, pointerOf, rangeOf, textAt } from './json-tree.js';
import { allowedValues, propertyNames, refersToStep, schemasAt, valueLabels } from './schema-walk.js';

/** The full syntax tree (a long definition is parsed to its end, not just the visible part). */
const treeOf = (state) => ensureSyntaxTree(state, state.doc.length, 500) ?? syntaxTree(state);

/** A problem as the editor lists it: {from, to, line, path, message, source}. */
function placed(state, problem, source) {
  const { from, to } = rangeOf(treeOf(state), state.doc, problem.path);
  return { from, to, line: state.doc.lineAt(from).number, path: problem.path || '/', message: problem.message, source };
}

/** The JSON's own syntax error, placed by CodeMirror's JSON linter. */
function parseProblems(state) {
  return jsonParseLinter()({ state }).map((d) => ({ from: d.from, to: Math.max(d.to, Math.min(state.doc.length, d.from + 1)), line: state.doc.lineAt(d.from).number, path: '', message: `not JSON: ${d.message}`, source: 'JSON' }));
}

/**
 * The runtime's problems of the last Test run or Deploy: each kept, by its pointer, while
 * the text it names is the one the runtime saw (an edit there is taken as its fix; the
 * next Test run or Deploy checks again).
 */
function createRuntimeProblems() {
  let list = [];
  return {
    set(state, problems) {
      const tree = treeOf(state);
      list = problems.map((p) => ({ path: p.path ?? '', message: p.message, seen: textAt(tree, state.doc, p.path ?? '') }));
    },
    current(state) {
      const tree = treeOf(state);
      list = list.filter((p) => textAt(tree, state.doc, p.path) === p.seen);
      return list;
    },
  };
}

function diagnose(state, runtime) {
  const syntax = parseProblems(state);
  if (syntax.length > 0) return syntax;
  const local = schemaProblems(JSON.parse(state.doc.toString())).map((p) => placed(state, p, 'schema'));
  const known = new Set(local.map((p) => `${p.path} ${p.message}`));
  const fromRuntime = runtime
    .current(state)
    .filter((p) => !known.has(`${p.path || '/'} ${p.message}`))
    .map((p) => placed(state, p, 'runtime'));
  return [...fromRuntime, ...local].sort((a, b) => a.from - b.from);
}

// ---- completion ------------------------------------------------------------

/** The step ids the definition has (for next, ifTrue, paths…). */
function stepIdsOf(state) {
  const tree = treeOf(state);
  const steps = locate(tree, state.doc, '/steps');
  if (!steps?.found || steps.node.name !== 'Array') return [];
  const ids = [];
  for (let i = 0; ; i++) {
    const at = locate(tree, state.doc, `/steps/${i}`);
    if (!at?.found) break;
    const id = literalsOf(state.doc, at.node).id;
    if (typeof id === 'string') ids.push(id);
  }
  return ids;
}

/** The account's values for a place: step ids, connection names, the connection's operations, deployed processes. */
function accountValues(state, segments, entries, siblings, hints) {
  const last = segments.at(-1);
  if (refersToStep(entries, segments)) return stepIdsOf(state).map((id) => ({ value: id, detail: 'step' }));
  if (last === 'connection') return hints.connections.map((c) => ({ value: c.name, detail: `connection (${c.connector})` }));
  if (last === 'operation') {
    const connection = hints.connections.find((c) => c.name === siblings.connection || c.id === siblings.connection);
    const connector = hints.connectors.find((c) => c.id === connection?.connector);
    return (connector?.operations ?? []).map((o) => ({ value: o.id, detail: `operation of ${connector.id}`, info: o.description ?? o.name }));
  }
  if (last === 'process' && siblings.kind === 'process-call') return hints.processes.map((p) => ({ value: p, detail: 'deployed process' }));
  return [];
}

/** Replaces the word being typed and the closing quote CodeMirror typed after it. */
function applyText(insert) {
  return (view, _completion, from, to) => {
    const end = view.state.doc.sliceString(to, to + 1) === '"' ? to + 1 : to;
    view.dispatch({ changes: { from, to: end, insert }, selection: { anchor: from + insert.length } });
  };
}

/** Where the cursor is: {kind: 'name' | 'value', segments, container} or null. */
function placeAt(state, from) {
  const tree = treeOf(state);
  const container = containerAt(tree, from);
  if (!container) return null;
  const before = state.doc.sliceString(Math.max(0, from - 400), from);
  const prev = before.trimEnd().slice(-1);
  const path = pathOf(state.doc, container);
  if (container.name === 'Object' && (prev === '{' || prev === ',')) return { kind: 'name', segments: path, container, tree };
  if (container.name === 'Object' && prev === ':') {
    const name = /"((?:[^"\\]|\\.)*)"\s*:\s*$/.exec(before);
    return name ? { kind: 'value', segments: [...path, JSON.parse(`"${name[1]}"`)], container, tree } : null;
  }
  if (container.name === 'Array' && (prev === '[' || prev === ',')) return { kind: 'value', segments: [...path, String(indexAt(container, from))], container, tree, item: true };
  return null;
}

function completionSource(hints) {
  return (context) => {
    const word = context.matchBefore(/"?[^"\s{}[\],:]*/);
    if (!word || (word.from === word.to && !context.explicit)) return null;
    const place = placeAt(context.state, word.from);
    if (!place) return null;
    const { doc } = context.state;
    const valuesAt = (depth) => {
      const at = locate(place.tree, doc, pointerOf(place.segments.slice(0, depth)));
      return at?.found ? literalsOf(doc, at.node) : {};
    };
    if (place.kind === 'name') {
      const entries = schemasAt(processSchema, place.segments, valuesAt);
      const present = new Set(namesOf(doc, place.container));
      const options = propertyNames(processSchema, entries)
        .filter((p) => !present.has(p.name))
        .map((p) => ({ label: `"${p.name}"`, type: 'property', detail: p.title, info: p.description, apply: applyText(`"${p.name}": `) }));
      return { from: word.from, options, validFor: /^"?[\w$.-]*$/ };
    }
    const entries = schemasAt(processSchema, place.segments, valuesAt);
    const labels = valueLabels(entries);
    const siblings = place.item ? {} : literalsOf(doc, place.container);
    const options = [
      ...allowedValues(entries).map((v) => ({ label: JSON.stringify(v), type: 'enum', detail: labels[v] ?? undefined, apply: applyText(JSON.stringify(v)) })),
      ...accountValues(context.state, place.segments, entries, siblings, hints).map((v) => ({ label: JSON.stringify(v.value), type: 'variable', detail: v.detail, info: v.info, apply: applyText(JSON.stringify(v.value)) })),
    ];
    return options.length > 0 ? { from: word.from, options, validFor: /^"?[^"]*$/ } : null;
  };
}

// ---- the editor ------------------------------------------------------------

/** The runtime answered (a Test run or a Deploy): the problems are checked again. */
const answered = StateEffect.define();

/**
 * A definition editor: {element, view, text(), setText(text), focus(), goTo(pointer),
 * showRuntimeProblems(problems)}. `onChange(text)` follows each edit; `onProblems(list)`
 * each check ({line, path, message, source: 'JSON' | 'schema' | 'runtime'}, in text
 * order); `keys` adds key bindings (Mod-Enter runs the test).
 */
export function createDefinitionEditor({ text, hints, onChange = () => {}, onProblems = () => {}, keys = [], label = 'Process definition (JSON)' }) {
  const element = h('div', { class: 'editor-host', id: 'definition-editor', 'data-ready': 'false' });
  const root = element.attachShadow({ mode: 'open' });
  const parent = h('div', { class: 'editor-frame' });
  root.append(h('link', { rel: 'stylesheet', href: '/editor.css' }), parent);
  const runtime = createRuntimeProblems();
  const check = linter(
    (view) => {
      const problems = diagnose(view.state, runtime);
      onProblems(problems);
      element.dataset.problems = String(problems.length);
      return problems.map((p) => ({ from: p.from, to: p.to, severity: 'error', source: p.source, message: p.source === 'runtime' ? `${p.message} (${p.path}; the runtime's answer to the last Test run or Deploy)` : `${p.message} (${p.path || 'JSON'})` }));
    },
    { delay: 250, needsRefresh: (update) => update.transactions.some((tr) => tr.effects.some((e) => e.is(answered))) },
  );
  const view = new EditorView({
    parent,
    root,
    state: EditorState.create({
      doc: text,
      extensions: [
        keymap.of(keys),
        basicSetup,
        json(),
        lintGutter(),
        check,
        autocompletion({ override: [completionSource(hints)], icons: false }),
        EditorView.contentAttributes.of({ 'aria-label': label }),
        EditorView.updateListener.of((update) => {
          if (update.docChanged) onChange(update.state.doc.toString());
        }),
      ],
    }),
  });
  element.dataset.ready = 'true';
  return {
    element,
    view,
    text: () => view.state.doc.toString(),
    setText(next) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: next } });
    },
    focus: () => view.focus(),
    /** Puts the cursor on what a pointer names (or at `at`), scrolled into view, and focuses the editor. */
    goTo(pointer, at) {
      const from = at ?? rangeOf(treeOf(view.state), view.state.doc, pointer).from;
      view.dispatch({ selection: { anchor: from }, scrollIntoView: true });
      view.focus();
    },
    /** The runtime's problems ({path, message}), shown at their lines until the text they name changes. */
    showRuntimeProblems(problems) {
      runtime.set(view.state, problems);
      view.dispatch({ effects: answered.of(null) });
    },
  };
}
