// An execution on its process's diagram: the version's definition drawn by diagram.js with
// the per-step counts (in / out / errors) on the nodes, updated from the execution's
// views (the event stream pushes count changes while it runs), failed steps marked, and
// a step's document errors in the side panel. Also the live bits of the execution page:
// the duration that ticks while it runs, and a log reload that coalesces bursts.
import { api } from './api.js';
import { h } from './dom.js';
import { createDiagram, stepDetails } from './diagram.js';

const runningStatus = (s) => s === 'queued' || s === 'in-process';

/** The panel of a node on an execution's diagram: the step's counts and errors, then its definition. */
function executionDetails(node, context) {
  const { counts, errors } = context;
  if (!node.step) return stepDetails(node, context);
  const live = [
    h('h3', {}, 'In this execution'),
    counts ? h('p', { class: 'step-counts', id: 'panel-counts' }, `${counts.in} in, ${counts.out} out, ${counts.errors} error(s)`) : h('p', { class: 'muted' }, 'No document reached this step.'),
    errors.length > 0
      ? h('ul', { class: 'problems', id: 'panel-errors' }, errors.map((e) => h('li', {}, h('strong', {}, e.code), ' ', e.message)))
      : null,
  ];
  const [heading, ...rest] = stepDetails(node, context);
  return [heading, live, rest];
}

/**
 * The diagram section of an execution's page: {element, update(view)}. The definition is
 * the execution's version (GET /deployments/:process?version=N); a test-mode run carries
 * no stored definition, so it says so instead.
 */
export function executionDiagram(view) {
  const element = h('section', { class: 'execution-diagram', id: 'execution-diagram', 'aria-label': 'Execution diagram' }, h('p', { class: 'muted' }, 'Loading the diagram…'));
  let diagram = null;
  let latest = view;
  const load = async () => {
    if (view.version === null) {
      element.replaceChildren(h('p', { class: 'muted' }, 'A test-mode run: its definition is not stored with it, so it has no diagram here. Its counts per step are below.'));
      return;
    }
    const d = await api('GET', `/deployments/${encodeURIComponent(view.processId)}?version=${view.version}`);
    if (!d.definition) {
      element.replaceChildren(h('p', { class: 'error' }, 'The stored definition of this version cannot be read.'));
      return;
    }
    diagram = createDiagram(d.definition, { title: `Diagram of ${view.processId} version ${view.version}`, details: executionDetails });
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
