// The process editor (#/editor, #/editor/<process>): edit a definition in CodeMirror
// (definition-editor.js) with its diagram redrawn as you type (when the JSON parses),
// problems listed and marked at their lines (the schema's as you type, the runtime's
// from a Test run or a Deploy), a Test run (test mode, with documents pasted or uploaded)
// drawn with its counts and step data (execution.js), then Deploy. app.js loads this
// module with import() when the page opens, so CodeMirror is not part of the console's
// first load.
import { api } from '../api.js';
import { h, put, badge, facts, duration, toBase64 } from '../dom.js';
import { createDiagram, stepDetails } from '../diagram.js';
import { executionDiagram, stepDataSection, advances, runningStatus } from '../execution.js';
import { createDefinitionEditor } from '../definition-editor.js';

/** A new process's first text: documents in, one map step. */
const template = {
  id: 'my-process',
  name: 'My process',
  start: { kind: 'documents', next: 'shape' },
  steps: [{ id: 'shape', kind: 'map', expression: '$' }],
};

const asText = (definition) => JSON.stringify(definition, null, 2) + '\n';

function parsed(text) {
  try {
    return { definition: JSON.parse(text) };
  } catch (e) {
    return { error: e.message };
  }
}

/** What completion offers from the account: connections, their connectors' operations, deployed processes. */
async function editorHints() {
  const safe = (p, fallback) => p.catch(() => fallback);
  const [connections, connectors, deployments] = await Promise.all([
    safe(api('GET', '/connections').then((r) => r.connections), []),
    safe(api('GET', '/connectors').then((r) => r.loaded), []),
    safe(api('GET', '/deployments').then((r) => r.deployments), []),
  ]);
  return { connections, connectors, processes: deployments.map((d) => d.process) };
}

/** The pointer of a diagram node's definition: its step, or the start. */
function pointerOfNode(node, definition) {
  if (node.kind === 'start') return '/start';
  const index = (definition?.steps ?? []).findIndex((s) => s?.id === node.step);
  return index >= 0 ? `/steps/${index}` : null;
}

/**
 * The diagram of the text being edited: {element, show(text)}. Redrawn (laid out anew)
 * when the text parses as JSON and differs from the one drawn; a text that does not parse
 * leaves the last drawing, marked as not current. A node's panel has "Show in the editor".
 */
function liveDiagram(goTo) {
  const holder = h('div', { class: 'editor-diagram', id: 'editor-diagram' });
  const state = h('p', { class: 'muted', id: 'editor-diagram-state', 'aria-live': 'polite' });
  const element = h('section', { class: 'editor-diagram-section', 'aria-labelledby': 'editor-diagram-heading' }, h('h2', { id: 'editor-diagram-heading' }, 'Diagram'), state, holder);
  let drawn = null;
  let drawing = 0;
  const details = (definition) => (node, context) => {
    const pointer = pointerOfNode(node, definition);
    const button = pointer ? h('button', { type: 'button', class: 'secondary', id: 'panel-go-to', onclick: () => goTo(pointer) }, 'Show in the editor') : null;
    const [heading, ...rest] = stepDetails(node, context);
    return [heading, button, rest];
  };
  function show(text) {
    const { definition, error } = parsed(text);
    if (error) {
      state.textContent = 'The JSON does not parse: the diagram shows the last text that did.';
      holder.dataset.current = 'false';
      return;
    }
    holder.dataset.current = 'true';
    state.textContent = 'Redrawn as you type.';
    if (text === drawn) return;
    drawn = text;
    const mine = ++drawing;
    const diagram = createDiagram(definition, { id: 'editor-diagram', title: 'Diagram of the definition being edited', details: details(definition) });
    holder.replaceChildren(diagram.element);
    diagram.ready.then(() => {
      if (mine === drawing) holder.dataset.drawn = String(mine);
    }, () => {});
  }
  return { element, show };
}

/** The problems under the editor, each a button that puts the cursor on its line. */
function problemList(goTo) {
  const summary = h('p', { class: 'muted', id: 'editor-problems-summary', 'aria-live': 'polite' }, 'Checking…');
  const list = h('ul', { class: 'editor-problems', id: 'editor-problems' });
  const sources = { JSON: 'JSON', schema: 'schema', runtime: 'runtime' };
  function show(problems) {
    summary.textContent = problems.length === 0 ? 'No problems found by the schema. Test run or Deploy asks the runtime too (connections, operations, references, expressions).' : `${problems.length} problem(s):`;
    list.replaceChildren(
      ...problems.map((p) =>
        h('li', { 'data-line': String(p.line), 'data-path': p.path, 'data-source': p.source }, h('button', { type: 'button', onclick: () => goTo(p.path, p.from) }, h('span', { class: 'source' }, `Line ${p.line} (${sources[p.source]}):`), ` ${p.message}`, p.path ? ` at ${p.path}` : '')),
      ),
    );
  }
  return { element: h('div', {}, summary, list), show };
}

/** Documents for a Test run: a pasted body and uploaded files (one document each). */
function documentsInput() {
  const body = h('textarea', { id: 'test-document', spellcheck: 'false', class: 'short', placeholder: 'optional: the body of one document', 'aria-describedby': 'test-documents-hint' });
  const files = h('input', { type: 'file', id: 'test-files', multiple: true, 'aria-describedby': 'test-documents-hint' });
  const element = h(
    'fieldset',
    {},
    h('legend', {}, 'Documents passed in'),
    h('div', { class: 'field' }, h('label', { for: 'test-document' }, 'Paste a body'), body),
    h('div', { class: 'field' }, h('label', { for: 'test-files' }, 'or upload files (each one document)'), files),
    h('p', { class: 'hint', id: 'test-documents-hint' }, 'For a process that starts with documents passed in. Leave both empty to run without any.'),
  );
  async function read() {
    const documents = body.value ? [{ body: body.value }] : [];
    for (const file of files.files ?? []) documents.push({ body: toBase64(new Uint8Array(await file.arrayBuffer())), encoding: 'base64' });
    return documents;
  }
  return { element, read };
}

/**
 * The outcome of one Test run: its status, counts and link, the diagram with the counts
 * (execution.js) and its step data. {element, adopt(view)}: views older than the one
 * shown are ignored (event stream and reads may cross).
 */
function testRunView(first) {
  const stepData = stepDataSection(first.id);
  const live = executionDiagram(first, stepData);
  const summary = h('div', { id: 'test-run-summary' });
  let view = first;
  function paint() {
    put(summary, 'replaceChildren', facts([
      ['Execution', h('a', { href: `#/executions/${encodeURIComponent(view.id)}`, id: 'test-run-link' }, view.id)],
      ['Status', h('span', { id: 'test-run-status' }, badge(view.status))],
      ['Documents', h('span', { id: 'test-run-documents' }, `${view.documentsIn} in, ${view.documentsOut} out, ${view.documentsFailed} failed`)],
      ['Duration', duration(view.durationMs)],
      view.errorCode ? ['Error', `${view.errorCode}: ${view.errorMessage}`] : null,
    ]));
  }
  paint();
  const element = h('div', { class: 'test-run', 'data-execution': first.id }, summary, h('h3', {}, 'On the diagram'), live.element, stepData.element);
  function adopt(candidate) {
    if (!advances(view, candidate)) return false;
    view = candidate;
    paint();
    live.update(view);
    stepData.update(view);
    element.dataset.status = view.status;
    return true;
  }
  live.update(view);
  stepData.update(view);
  element.dataset.status = view.status;
  return { element, adopt, current: () => view };
}

/**
 * Test runs from the page: POST /executions with the definition (test mode) and the
 * documents, then the run followed on the event stream. The page listens before it
 * posts, and events of the run that arrive before the answer are replayed after it.
 */
function testRunner(ui, editor, documents, failed) {
  const result = h('section', { id: 'test-run-result', 'aria-live': 'polite', 'aria-label': 'Test run result' });
  let shown = null;
  let early = null; // events seen while a run is being started
  const reread = async (id) => shown?.adopt(await api('GET', `/executions/${encodeURIComponent(id)}`));
  const take = async (event) => {
    if (running(event)) shown.adopt({ ...event, errors: shown.current().errors });
    else await reread(event.id); // an ended run is read again for its document errors
  };
  const running = (event) => runningStatus(event.status);
  ui.listen((event) => {
    if (early) early.push(event);
    else if (shown && event.id === shown.current().id) take(event).catch((e) => ui.say(ui.errorText(e), true));
  });
  ui.resync(() => (shown ? reread(shown.current().id).catch((e) => ui.say(ui.errorText(e), true)) : undefined));
  async function run() {
    const { definition, error } = parsed(editor.text());
    if (error) return failed(null, `The definition is not JSON: ${error}`);
    const docs = await documents.read();
    early = [];
    try {
      const view = await api('POST', '/executions', { definition, ...(docs.length > 0 ? { documents: docs } : {}) });
      shown = testRunView(view);
      put(result, 'replaceChildren', h('h3', {}, `Test run ${view.id}`), shown.element);
      editor.showRuntimeProblems([]);
      ui.say(`Test run ${view.id} started.`);
      const pending = early.filter((e) => e.id === view.id);
      early = null;
      for (const event of pending) await take(event);
      if (!running(shown.current())) await reread(view.id);
    } catch (e) {
      early = null;
      failed(e);
    }
  }
  return { element: result, run };
}

export async function editorPage(ui, processId) {
  const [source, hints] = await Promise.all([processId ? api('GET', `/deployments/${encodeURIComponent(processId)}`) : null, editorHints()]);
  const initial = source?.definition ? asText(source.definition) : asText(template);
  let editor = null;
  const goTo = (pointer, at) => editor.goTo(pointer, at);
  const diagram = liveDiagram(goTo);
  const problems = problemList(goTo);
  let redraw = null;
  const changed = (text) => {
    ui.unsaved.changed(editor.element);
    clearTimeout(redraw);
    redraw = setTimeout(() => diagram.show(text), 300);
  };
  /** A refused Test run or Deploy: the runtime's problems at their lines, the cursor on the first. */
  const failed = (e, message) => {
    ui.say(message ?? ui.errorText(e), true);
    const list = e ? ui.problemsOf(e) : [];
    editor.showRuntimeProblems(list);
    if (list.length > 0) editor.goTo(list[0].path);
    else editor.focus();
  };
  const documents = documentsInput();
  let tests = null;
  editor = createDefinitionEditor({
    text: initial,
    hints,
    onChange: changed,
    onProblems: problems.show,
    keys: [{ key: 'Mod-Enter', run: () => (void tests.run(), true) }],
  });
  tests = testRunner(ui, editor, documents, failed);
  const deployed = h('div', { id: 'deploy-result', 'aria-live': 'polite' });
  async function deploy() {
    const { definition, error } = parsed(editor.text());
    if (error) return failed(null, `The definition is not JSON: ${error}`);
    try {
      const view = await api('POST', '/deployments', definition);
      ui.unsaved.saved(editor.element);
      editor.showRuntimeProblems([]);
      ui.say(`Deployed ${view.process} version ${view.version}.`);
      put(deployed, 'replaceChildren', h('p', { class: 'panel', id: 'deployed' }, `Deployed ${view.process} version ${view.version}. `, h('a', { href: `#/deployments/${encodeURIComponent(view.process)}` }, `Open process ${view.process}`)));
      history.replaceState(null, '', `#/editor/${encodeURIComponent(view.process)}`);
    } catch (e) {
      failed(e);
    }
  }
  const format = () => {
    const { definition, error } = parsed(editor.text());
    if (error) return failed(null, `The definition is not JSON: ${error}`);
    editor.setText(asText(definition));
  };
  const button = (label, onclick, attrs = {}) => h('button', { type: 'button', onclick, ...attrs }, label);
  document.getElementById('main').classList.add('wide');
  ui.page(
    source ? `Edit ${source.process}` : 'New process',
    h('p', { class: 'hint', id: 'editor-hint' }, 'The definition as JSON, checked against the process schema as you type (Ctrl+Space completes field names, kinds, step ids and connections). Tab leaves the editor. Ctrl+Enter (⌘+Enter) runs a test.'),
    source ? h('p', { class: 'muted' }, `Version ${source.version} of ${source.process}; Deploy makes a new version.`) : null,
    h(
      'div',
      { class: 'editor-layout' },
      h('section', { 'aria-labelledby': 'editor-heading' }, h('h2', { id: 'editor-heading' }, 'Definition'), editor.element, problems.element, h('div', { class: 'actions' }, button('Format', format, { class: 'secondary', id: 'editor-format' }), h('a', { href: '#/deployments', class: 'button secondary' }, 'Back to deployments'))),
      diagram.element,
    ),
    h('section', { 'aria-labelledby': 'test-heading' }, h('h2', { id: 'test-heading' }, 'Test run'), h('p', { class: 'hint' }, 'Runs the definition in test mode (nothing is deployed): each step\'s counts on the diagram and the documents that left it.'), documents.element, h('div', { class: 'actions' }, button('Test run', () => tests.run(), { id: 'test-run' })), tests.element),
    h('section', { 'aria-labelledby': 'deploy-heading' }, h('h2', { id: 'deploy-heading' }, 'Deploy'), h('div', { class: 'actions' }, button('Deploy', deploy, { id: 'editor-deploy' })), deployed),
  );
  diagram.show(initial);
}
