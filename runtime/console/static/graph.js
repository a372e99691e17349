// A process definition as a graph to draw: the start, every step and the ends as nodes,
// every reference between them (next, decision outcomes, routes, branch paths, try and
// catch) as an edge with its kind and label. Pure data, no DOM: diagram.js lays it out
// and draws it. A reference to a step that does not exist (a definition being edited)
// becomes a "missing" node, so the drawing shows the problem instead of failing.

/** Short names of the step kinds, drawn as the node's icon. */
export const kindIcons = {
  start: 'GO',
  end: 'END',
  missing: '?',
  operation: 'OP',
  map: 'MAP',
  'set-properties': 'SET',
  decision: 'IF',
  route: 'RTE',
  branch: 'BR',
  split: 'SPL',
  combine: 'CMB',
  try: 'TRY',
  exception: 'EXC',
  stop: 'STP',
  'process-call': 'CALL',
  notify: 'NTF',
};

/** The kinds that end a path themselves: no end node after them. */
const terminalKinds = new Set(['exception', 'stop']);

/** A step's outgoing references: [{target, kind, label}]. */
export function referencesOf(step) {
  const out = [];
  const add = (target, kind, label = '') => {
    if (typeof target === 'string') out.push({ target, kind, label });
  };
  switch (step.kind) {
    case 'decision':
      add(step.ifTrue, 'decision', 'true');
      add(step.ifFalse, 'decision', 'false');
      break;
    case 'route':
      for (const r of step.routes ?? []) add(r.next, 'route', `= ${JSON.stringify(r.equals)}`);
      add(step.default, 'route', 'default');
      break;
    case 'branch':
      (step.paths ?? []).forEach((p, i) => add(p, 'branch', `path ${i + 1}`));
      break;
    case 'try':
      add(step.try, 'try', 'try');
      add(step.catch, 'catch', 'catch');
      break;
    case 'exception':
    case 'stop':
      break;
    default:
      add(step.next, 'next');
  }
  return out;
}

/** The labels of the step's outcomes that lead nowhere (the path ends there). */
function openEnds(step) {
  if (terminalKinds.has(step.kind) || step.kind === 'branch' || step.kind === 'try') return [];
  if (step.kind === 'decision') return ['true', 'false'].filter((outcome) => step[outcome === 'true' ? 'ifTrue' : 'ifFalse'] === undefined);
  if (step.kind === 'route') return step.default === undefined ? ['default'] : [];
  return step.next === undefined ? [''] : [];
}

function stepNode(step) {
  const detail = step.kind === 'operation' ? `${step.connection}.${step.operation}` : step.kind === 'process-call' ? `calls ${step.process}` : step.kind;
  return { id: `step:${step.id}`, step: step.id, kind: step.kind, label: step.name ?? step.id, detail, calls: step.kind === 'process-call' ? step.process : undefined };
}

function startNode(start) {
  const detail = start.kind === 'operation' ? `${start.connection}.${start.operation}` : start.kind === 'documents' ? 'documents passed in' : 'no data';
  return { id: 'start', step: null, kind: 'start', label: 'Start', detail };
}

/** The graph of a definition: {nodes, edges}; nodes and edges have unique ids. */
export function graphOf(definition) {
  const steps = Array.isArray(definition?.steps) ? definition.steps.filter((s) => s && typeof s.id === 'string') : [];
  const known = new Set(steps.map((s) => s.id));
  const nodes = [startNode(definition?.start ?? { kind: 'none' })];
  const edges = [];
  const missing = new Set();
  const link = (source, target, kind, label) => {
    if (!known.has(target) && !missing.has(target)) {
      missing.add(target);
      nodes.push({ id: `missing:${target}`, step: null, kind: 'missing', label: target, detail: 'no such step' });
    }
    edges.push({ id: `e${edges.length}`, source, target: known.has(target) ? `step:${target}` : `missing:${target}`, kind, label });
  };
  const end = (source, key, kind, label) => {
    nodes.push({ id: `end:${key}`, step: null, kind: 'end', label: 'End', detail: '' });
    edges.push({ id: `e${edges.length}`, source, target: `end:${key}`, kind, label });
  };
  const first = definition?.start?.next;
  if (typeof first === 'string') link('start', first, 'next', '');
  else end('start', 'start', 'next', '');
  for (const step of steps) {
    nodes.push(stepNode(step));
    for (const r of referencesOf(step)) link(`step:${step.id}`, r.target, r.kind, r.label);
    for (const label of openEnds(step)) end(`step:${step.id}`, `${step.id}:${label}`, step.kind === 'decision' || step.kind === 'route' ? step.kind : 'next', label);
  }
  return { nodes, edges };
}
