// An execution on its process's diagram: the version's definition drawn by diagram.js with
// the per-step counts (in / out / errors) on the nodes, updated from the execution's
// views (the event stream pushes count changes while it runs), failed steps marked, and
// a step's document errors in the side panel. Also the live bits of the execution page:
// the duration that ticks while it runs, and a log reload that coalesces bursts.
import { api } from './api.js';
import { h } from './dom.js';
import { createDiagram, stepDetails } from './diagram.js';

export const runningStatus = (s) => s === 'queued' || s === 'in-process';
const stage = (s) => (s === 'queued' ? 0 : s === 'in-process' ? 1 : 2);
/**
 * Whether `candidate` may replace `current` (either may be undefined): a view never goes
 * back to an earlier status, so a read answered before an event but arriving after it
 * (pages subscribe first, then read) cannot undo what the event said.
 */
export const advances = (current, candidate) => !current || (candidate && (stage(candidate.status) !== stage(current.status) ? stage(candidate.status) > stage(current.status) : sameStageNewer(current, candidate)));
/** Of two views of a running execution, the later event (`seq` grows with each, step counts included). */
const sameStageNewer = (current, candidate) => current.seq === undefined || candidate.seq === undefined || candidate.seq >= current.seq;

/** The panel of a node on an execution's diagram: the step's counts, errors and documents, then its definition. */
function executionDetails(node, context, stepData) {
  const { counts, errors } = context;
  if (!node.step) return stepDetails(node, context);
  const documents = stepData?.has(node.step)
    ? h('button', { type: 'button', class: 'secondary', id: 'panel-documents', onclick: () => stepData.show(node.step).then(() => stepData.element.scrollIntoView({ block: 'start' })).catch(() => {}) }, 'Show its documents')
    : null;
  const live = [
    h('h3', {}, 'In this execution'),
    counts ? h('p', { class: 'step-counts', id: 'panel-counts' }, `${counts.in} in, ${counts.out} out, ${counts.errors} error(s)`) : h('p', { class: 'muted' }, 'No document reached this step.'),
    errors.length > 0
      ? h('ul', { class: 'problems', id: 'panel-errors' }, errors.map((e) => h('li', {}, h('strong', {}, e.code), ' ', e.message)))
      : null,
    documents,
  ];
  const [heading, ...rest] = stepDetails(node, context);
  return [heading, live, rest];
}

/**
 * The diagram section of an execution's page: {element, update(view)}. The definition is
 * the execution's version (GET /deployments/:process?version=N), or for a test-mode run
 * the definition kept with it (GET /executions/:id).
 */
export function executionDiagram(view, stepData) {
  const element = h('section', { class: 'execution-diagram', id: 'execution-diagram', 'aria-label': 'Execution diagram' }, h('p', { class: 'muted' }, 'Loading the diagram…'));
  let diagram = null;
  let latest = view;
  const load = async () => {
    const test = view.version === null;
    const d = test ? await api('GET', `/executions/${encodeURIComponent(view.id)}`) : await api('GET', `/deployments/${encodeURIComponent(view.processId)}?version=${view.version}`);
    if (test && d.definition === undefined) {
      element.replaceChildren(h('p', { class: 'muted' }, 'A test-mode run whose definition was not kept, so it has no diagram here. Its counts per step are below.'));
      return;
    }
    if (!d.definition) {
      element.replaceChildren(h('p', { class: 'error' }, test ? 'The definition kept with this test-mode run cannot be read.' : 'The stored definition of this version cannot be read.'));
      return;
    }
    const title = test ? `Diagram of the test-mode run of ${view.processId}` : `Diagram of ${view.processId} version ${view.version}`;
    diagram = createDiagram(d.definition, { title, details: (node, context) => executionDetails(node, context, stepData) });
    element.replaceChildren(diagram.element);
    diagram.setCounts(latest.steps, latest.errors);
  };
  load().catch((error) => element.replaceChildren(h('p', { class: 'error' }, `The diagram could not be loaded: ${error?.message ?? error}`)));
  return {
    element,
    update(next) {
      latest = next;
      diagram?.setCounts(next.steps, next.errors ?? []);
    },
  };
}

/**
 * While the execution runs, ticks its duration once a second and calls `tail()` every
 * other second (the runtime writes an execution's log lines to the store within a
 * second, and no event says when): `current()` gives the latest view, `target()` the
 * duration's element (null once the page is gone, which ends the ticking).
 */
export function tickWhileRunning({ current, target, format, tail }) {
  let ticks = 0;
  const timer = setInterval(() => {
    const el = target();
    const view = current();
    if (!el || !el.isConnected) {
      clearInterval(timer);
      return;
    }
    if (!view?.startedAt || !runningStatus(view.status)) return;
    el.textContent = format(Date.now() - Date.parse(view.startedAt));
    if (++ticks % 2 === 0) tail().catch(() => {});
  }, 1000);
  return timer;
}

/**
 * Runs `fn` now, or once more after the run in progress when called during it: bursts of
 * events (step counts pushed up to 4 times a second) reload the log at most one at a time.
 */
export function coalesce(fn) {
  let running = null;
  let again = false;
  const run = async () => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await fn();
        } while (again);
      } finally {
        running = null;
      }
    })();
    return running;
  };
  return run;
}

const hexHead = (bytes, max = 64) => [...bytes.slice(0, max)].map((b) => b.toString(16).padStart(2, '0')).join(' ') + (bytes.length > max ? ' …' : '');

function bytesOf(base64) {
  const text = atob(base64);
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

/** A recorded body: JSON pretty-printed, text as text, binary as its size and a hex head. */
function bodyView(d) {
  const cut = d.truncated ? ` (the first ${d.encoding === 'base64' ? bytesOf(d.body).length : new TextEncoder().encode(d.body).length} of ${d.size} bytes)` : '';
  if (d.encoding === 'base64') {
    const bytes = bytesOf(d.body);
    return [h('p', { class: 'muted body-kind' }, `binary, ${d.size} bytes${cut}`), h('pre', { class: 'log body-hex' }, hexHead(bytes))];
  }
  if (!d.truncated) {
    try {
      const value = JSON.parse(d.body);
      return [h('p', { class: 'muted body-kind' }, `JSON, ${d.size} bytes`), h('pre', { class: 'log body-json' }, JSON.stringify(value, null, 2))];
    } catch {
      // not JSON: shown as text
    }
  }
  return [h('p', { class: 'muted body-kind' }, `text, ${d.size} bytes${cut}`), h('pre', { class: 'log body-text' }, d.body || '(empty)')];
}

/** What the step did to the document's properties: added, changed and removed ones. */
export function propertiesDiff(input, output) {
  const changes = [];
  for (const [name, value] of Object.entries(output)) {
    if (!(name in input)) changes.push({ kind: 'added', name, value });
    else if (input[name] !== value) changes.push({ kind: 'changed', name, from: input[name], value });
  }
  for (const [name, from] of Object.entries(input)) if (!(name in output)) changes.push({ kind: 'removed', name, from });
  return changes;
}

function diffView(d) {
  if (!d.input) return null;
  const changes = propertiesDiff(d.input, d.properties);
  const line = (c) => (c.kind === 'added' ? `+ ${c.name} = ${c.value}` : c.kind === 'removed' ? `− ${c.name} (was ${c.from})` : `~ ${c.name}: ${c.from} → ${c.value}`);
  return [
    h('h5', {}, 'Properties: input → output'),
    changes.length === 0 ? h('p', { class: 'muted properties-diff' }, 'The step changed no property.') : h('ul', { class: 'properties-diff' }, changes.map((c) => h('li', { class: `diff-${c.kind}` }, line(c)))),
  ];
}

function documentView(d) {
  const properties = Object.entries(d.properties);
  return h(
    'article',
    { class: 'step-document panel', 'data-seq': String(d.seq) },
    h('h4', {}, `Document ${d.seq + 1}`),
    properties.length === 0
      ? h('p', { class: 'muted' }, 'No properties.')
      : h('dl', { class: 'facts step-properties' }, properties.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
    diffView(d),
    bodyView(d),
  );
}

/**
 * The step data of an execution (GET /executions/:id/steps and its documents, paged):
 * {element, load(), show(step)}. A step's documents are shown with their properties and
 * body; "More documents" reads the next page.
 */
export function stepDataSection(id) {
  const path = `/executions/${encodeURIComponent(id)}`;
  const list = h('div', { class: 'actions step-data-steps', id: 'step-data-steps', role: 'group', 'aria-label': 'Steps with recorded documents' });
  const documents = h('div', { class: 'step-data-documents', id: 'step-data-documents', 'aria-live': 'polite' });
  const element = h('section', { class: 'step-data', id: 'step-data', 'aria-labelledby': 'step-data-heading' }, h('h2', { id: 'step-data-heading' }, 'Step data'), list, documents);
  let steps = [];
  async function show(step) {
    for (const b of list.querySelectorAll('button')) b.setAttribute('aria-pressed', String(b.dataset.step === step));
    const heading = h('h3', {}, `Documents that left ${step}`);
    documents.replaceChildren(heading);
    let cursor = null;
    const more = h('button', { type: 'button', class: 'secondary', id: 'step-data-more', hidden: true, onclick: () => page().catch(() => {}) }, 'More documents');
    async function page() {
      const answer = await api('GET', `${path}/steps/${encodeURIComponent(step)}/documents?limit=20${cursor ? `&cursor=${cursor}` : ''}`);
      more.before(...answer.documents.map(documentView));
      cursor = answer.next;
      more.hidden = !cursor;
    }
    documents.append(more);
    await page();
  }
  async function load() {
    ({ steps } = await api('GET', `${path}/steps`));
    if (steps.length === 0) {
      list.replaceChildren(h('p', { class: 'muted' }, 'No step data was recorded: test-mode runs record it, and deployed runs when the process sets options.recordStepData or the run asks.'));
      return;
    }
    list.replaceChildren(...steps.map((s) => h('button', { type: 'button', class: 'secondary', 'data-step': s.step, 'aria-pressed': 'false', onclick: () => show(s.step).catch(() => {}) }, `${s.step} (${s.count})`)));
  }
  let loaded = false;
  /** Step data is stored when the execution ends: read once then. */
  function update(view) {
    if (loaded || runningStatus(view.status)) return;
    loaded = true;
    load().catch((error) => list.replaceChildren(h('p', { class: 'error' }, `The step data could not be read: ${error?.message ?? error}`)));
  }
  return { element, load, show, update, has: (step) => steps.some((s) => s.step === step) };
}
