// The process diagram: a definition's graph (graph.js) laid out by elkjs in a Web Worker
// (vendor-elk-worker.js, a same-origin file, so the console's CSP stays
// `default-src 'self'`) and drawn as SVG. Nodes are buttons: Tab reaches them, Enter or
// Space opens their details in the side panel. Zoom with the buttons, the wheel or +/-;
// pan by dragging or with the arrow keys on the drawing. An execution's per-step counts
// and errors are drawn on the nodes with setCounts().
import ELK from './vendor-elk-api.js';
import { h } from './dom.js';
import { graphOf, kindIcons } from './graph.js';

const svgNs = 'http://www.w3.org/2000/svg';
const nodeWidth = 190;
const nodeHeight = 64;
const endSize = 36;

let elk = null;
/** One ELK (one worker) for the page, made on the first layout. */
function layoutEngine() {
  elk ??= new ELK({ workerUrl: '/vendor-elk-worker.js' });
  return elk;
}

/** An SVG element: s('rect', {x: 1}, child…). */
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(svgNs, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, String(value));
  }
  for (const child of children.flat()) if (child !== null && child !== undefined && child !== false) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return el;
}

const labelWidth = (text) => Math.max(24, text.length * 7 + 10);

function sizeOf(node) {
  return node.kind === 'end' ? { width: endSize, height: endSize } : node.kind === 'start' ? { width: 150, height: 52 } : { width: nodeWidth, height: nodeHeight };
}

/** The ELK graph of our graph: fixed node sizes, labelled edges, layered left to right. */
export function elkGraphOf(graph) {
  return {
    id: 'root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'RIGHT',
      'elk.edgeRouting': 'ORTHOGONAL',
      'elk.spacing.nodeNode': '28',
      'elk.layered.spacing.nodeNodeBetweenLayers': '56',
      'elk.spacing.edgeLabel': '4',
      'elk.layered.spacing.edgeNodeBetweenLayers': '24',
      'elk.edgeLabels.placement': 'CENTER',
      'elk.layered.nodePlacement.strategy': 'BRANDES_KOEPF',
      'elk.layered.considerModelOrder.strategy': 'NODES_AND_EDGES',
    },
    children: graph.nodes.map((n) => ({ id: n.id, ...sizeOf(n) })),
    edges: graph.edges.map((e) => ({ id: e.id, sources: [e.source], targets: [e.target], labels: e.label ? [{ id: `${e.id}:label`, text: e.label, width: labelWidth(e.label), height: 16 }] : [] })),
  };
}

/** Lays the graph out: {nodes: Map id → box, edges: Map id → {points, label}, width, height}. */
export async function layoutGraph(graph) {
  const laid = await layoutEngine().layout(elkGraphOf(graph));
  const nodes = new Map(laid.children.map((c) => [c.id, { x: c.x, y: c.y, width: c.width, height: c.height }]));
  const edges = new Map(
    laid.edges.map((e) => {
      const points = (e.sections ?? []).flatMap((sec) => [sec.startPoint, ...(sec.bendPoints ?? []), sec.endPoint]);
      const label = e.labels?.[0];
      return [e.id, { points, label: label ? { x: label.x, y: label.y, width: label.width, height: label.height } : null }];
    }),
  );
  return { nodes, edges, width: laid.width, height: laid.height };
}

function edgeElement(edge, laid, arrow) {
  const d = laid.points.map((p, i) => `${i === 0 ? 'M' : 'L'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
  return s(
    'g',
    { class: `edge edge-${edge.kind}`, 'data-edge': edge.id, 'data-kind': edge.kind, 'data-source': edge.source, 'data-target': edge.target },
    s('path', { d, 'marker-end': `url(#${arrow})` }),
    laid.label ? [s('rect', { class: 'edge-label-bg', x: laid.label.x, y: laid.label.y, width: laid.label.width, height: laid.label.height, rx: 3 }), s('text', { class: 'edge-label', x: laid.label.x + laid.label.width / 2, y: laid.label.y + 12, 'text-anchor': 'middle' }, edge.label)] : null,
  );
}

const truncate = (text, max) => (text.length > max ? text.slice(0, max - 1) + '…' : text);

function nodeBody(node, box) {
  if (node.kind === 'end') return [s('circle', { class: 'node-shape', cx: box.width / 2, cy: box.height / 2, r: box.width / 2 - 2 }), s('text', { class: 'node-end', x: box.width / 2, y: box.height / 2 + 4, 'text-anchor': 'middle' }, 'End')];
  const icon = kindIcons[node.kind] ?? node.kind;
  return [
    s('rect', { class: 'node-shape', width: box.width, height: box.height, rx: node.kind === 'start' ? 26 : 6 }),
    s('rect', { class: 'node-icon-bg', x: 8, y: 10, width: 36, height: 20, rx: 4 }),
    s('text', { class: 'node-icon', x: 26, y: 24, 'text-anchor': 'middle', 'aria-hidden': 'true' }, icon),
    s('text', { class: 'node-label', x: 52, y: 25 }, truncate(node.label, 17)),
    node.calls
      ? s('a', { href: `#/deployments/${encodeURIComponent(node.calls)}`, class: 'node-call', 'aria-label': `Open the called process ${node.calls}` }, s('text', { class: 'node-detail node-link', x: 8, y: 46 }, truncate(`↗ ${node.detail}`, 26)))
      : s('text', { class: 'node-detail', x: 8, y: 46 }, truncate(node.detail, 27)),
    s('text', { class: 'node-counts', x: 8, y: box.height - 4 }),
  ];
}

function nodeElement(node, box, select) {
  const name = node.kind === 'end' ? 'End' : `${node.label} (${node.kind === 'start' ? 'start' : node.kind})`;
  const open = () => select(node);
  return s(
    'g',
    {
      class: `node kind-${node.kind}`,
      transform: `translate(${box.x},${box.y})`,
      tabindex: node.kind === 'end' ? undefined : '0',
      role: node.kind === 'end' ? undefined : 'button',
      'aria-label': name,
      'data-node': node.id,
      'data-step': node.step ?? undefined,
      'data-kind': node.kind,
      onclick: (event) => {
        if (!event.target.closest('a')) open();
      },
      onkeydown: (event) => {
        if ((event.key === 'Enter' || event.key === ' ') && event.target === event.currentTarget) {
          event.preventDefault();
          open();
        }
      },
    },
    s('title', {}, name),
    nodeBody(node, box),
  );
}

/** Zoom and pan of the drawing: a transform on its one group, kept within sensible scales. */
function viewport(svg, group, size) {
  const view = { x: 0, y: 0, k: 1 };
  const apply = () => group.setAttribute('transform', `translate(${view.x.toFixed(1)},${view.y.toFixed(1)}) scale(${view.k.toFixed(3)})`);
  const zoomAt = (factor, cx, cy) => {
    const k = Math.min(3, Math.max(0.1, view.k * factor));
    view.x = cx - ((cx - view.x) * k) / view.k;
    view.y = cy - ((cy - view.y) * k) / view.k;
    view.k = k;
    apply();
  };
  /** The whole drawing in view; `readable` keeps the text readable (0.6 at least) and starts at the left. */
  const fit = (readable = false) => {
    const { width, height } = svg.getBoundingClientRect();
    const k = Math.max(0.1, Math.min(1, (width - 16) / size.width, (height - 16) / size.height));
    view.k = readable ? Math.max(k, 0.6) : k;
    view.x = readable && view.k > k ? 8 : (width - size.width * view.k) / 2;
    view.y = Math.max(8, (height - size.height * view.k) / 2);
    apply();
  };
  const center = () => {
    const { width, height } = svg.getBoundingClientRect();
    return [width / 2, height / 2];
  };
  const pan = (dx, dy) => {
    view.x += dx;
    view.y += dy;
    apply();
  };
  /** Brings a node's box into view (a node reached with Tab may be outside it). */
  const show = (box) => {
    const { width, height } = svg.getBoundingClientRect();
    const left = view.x + box.x * view.k;
    const top = view.y + box.y * view.k;
    const right = left + box.width * view.k;
    const bottom = top + box.height * view.k;
    if (left < 0) view.x -= left - 8;
    else if (right > width) view.x -= right - width + 8;
    if (top < 0) view.y -= top - 8;
    else if (bottom > height) view.y -= bottom - height + 8;
    apply();
  };
  return { view, zoomAt, fit, center, pan, show };
}

function panByPointer(svg, vp) {
  let drag = null;
  svg.addEventListener('pointerdown', (event) => {
    if (event.target.closest('.node')) return;
    drag = { x: event.clientX, y: event.clientY };
    svg.setPointerCapture(event.pointerId);
  });
  svg.addEventListener('pointermove', (event) => {
    if (!drag) return;
    vp.pan(event.clientX - drag.x, event.clientY - drag.y);
    drag = { x: event.clientX, y: event.clientY };
  });
  const stop = () => (drag = null);
  svg.addEventListener('pointerup', stop);
  svg.addEventListener('pointercancel', stop);
  svg.addEventListener(
    'wheel',
    (event) => {
      event.preventDefault();
      const r = svg.getBoundingClientRect();
      vp.zoomAt(event.deltaY < 0 ? 1.15 : 1 / 1.15, event.clientX - r.left, event.clientY - r.top);
    },
    { passive: false },
  );
}

function keysOf(svg, vp) {
  svg.addEventListener('keydown', (event) => {
    const moves = { ArrowLeft: [40, 0], ArrowRight: [-40, 0], ArrowUp: [0, 40], ArrowDown: [0, -40] };
    if (event.key === '+' || event.key === '=') vp.zoomAt(1.25, ...vp.center());
    else if (event.key === '-') vp.zoomAt(1 / 1.25, ...vp.center());
    else if (moves[event.key] && !event.target.closest('.node')) vp.pan(...moves[event.key]);
    else return;
    event.preventDefault();
  });
}

let diagrams = 0;
function markers(id) {
  return s('defs', {}, s('marker', { id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow-head' })));
}

/** The counts line of a node: "in 3 · out 2 · errors 1". */
function countsText(c) {
  return `in ${c.in} · out ${c.out}${c.errors ? ` · errors ${c.errors}` : ''}`;
}

/**
 * Draws a definition into a new element: {element, ready, setCounts(counts), boxes()}.
 * `details(node)` returns the side panel's content for a node (the default shows the
 * step's definition). `ready` resolves when the layout is drawn. `id` prefixes the ids of
 * its parts (`diagram-svg`, `diagram-panel`…), for a page that draws two.
 */
export function createDiagram(definition, { details = stepDetails, title = 'Process diagram', id = 'diagram' } = {}) {
  const graph = graphOf(definition);
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const steps = new Map((definition?.steps ?? []).map((st) => [st.id, st]));
  const panel = h('aside', { class: 'diagram-panel', id: `${id}-panel`, 'aria-live': 'polite', 'aria-label': 'Step details' }, h('p', { class: 'muted' }, 'Select a step (click it, or Tab to it and press Enter) to see its details.'));
  const arrow = `arrow-${++diagrams}`;
  const group = s('g', { class: 'viewport' });
  const svg = s('svg', { class: 'diagram-svg', id: `${id}-svg`, role: 'group', 'aria-label': title, tabindex: '0' }, markers(arrow), group);
  const json = h('pre', { class: 'log diagram-json', id: `${id}-json`, hidden: true }, JSON.stringify(definition, null, 2));
  const state = { selected: null, counts: {}, errors: [], vp: null, layout: null };
  const select = (node) => {
    state.selected = node;
    for (const el of group.querySelectorAll('.node')) el.classList.toggle('selected', el.dataset.node === node.id);
    panel.replaceChildren(...[details(node, { step: node.step ? steps.get(node.step) : null, definition, counts: node.step ? state.counts[node.step] : undefined, errors: state.errors.filter((e) => e.step === node.step) })].flat(Infinity).filter(Boolean));
  };
  const button = (label, onclick, attrs = {}) => h('button', { type: 'button', class: 'secondary', onclick, ...attrs }, label);
  const jsonButton = button('Show JSON', () => {
    json.hidden = !json.hidden;
    jsonButton.textContent = json.hidden ? 'Show JSON' : 'Hide JSON';
    jsonButton.setAttribute('aria-expanded', String(!json.hidden));
  }, { id: `${id}-json-toggle`, 'aria-expanded': 'false', 'aria-controls': `${id}-json` });
  const toolbar = h(
    'div',
    { class: 'actions diagram-tools' },
    button('Zoom in', () => state.vp?.zoomAt(1.25, ...state.vp.center()), { 'aria-label': 'Zoom in' }),
    button('Zoom out', () => state.vp?.zoomAt(1 / 1.25, ...state.vp.center()), { 'aria-label': 'Zoom out' }),
    button('Fit', () => state.vp?.fit(), { 'aria-label': 'Fit the diagram' }),
    jsonButton,
  );
  const status = h('p', { class: 'muted diagram-status', id: `${id}-status` }, 'Laying out the diagram…');
  const element = h('section', { class: 'diagram', 'aria-label': title }, toolbar, h('div', { class: 'diagram-body' }, h('div', { class: 'diagram-canvas' }, svg, status), panel), json);

  const ready = (async () => {
    const started = performance.now();
    const laid = await layoutGraph(graph);
    state.layout = laid;
    for (const edge of graph.edges) group.append(edgeElement(edge, laid.edges.get(edge.id), arrow));
    for (const node of graph.nodes) {
      const el = nodeElement(node, laid.nodes.get(node.id), select);
      el.addEventListener('focus', () => state.vp?.show(laid.nodes.get(node.id)));
      group.append(el);
    }
    state.vp = viewport(svg, group, laid);
    panByPointer(svg, state.vp);
    keysOf(svg, state.vp);
    state.vp.fit(true);
    paintCounts(group, state.counts);
    const ms = Math.round(performance.now() - started);
    status.textContent = `${graph.nodes.length} nodes, ${graph.edges.length} edges, laid out in ${ms} ms.`;
    element.dataset.layoutMs = String(ms);
    element.dataset.ready = 'true';
    return laid;
  })();
  ready.catch((error) => {
    status.textContent = `The diagram could not be laid out: ${error?.message ?? error}. The JSON is below.`;
    status.classList.add('error');
    json.hidden = false;
  });

  return {
    element,
    ready,
    graph,
    /** Per-step counts ({step: {in, out, errors}}) and document errors, drawn on the nodes. */
    setCounts(counts, errors = state.errors) {
      state.counts = counts ?? {};
      state.errors = errors ?? [];
      paintCounts(group, state.counts);
      if (state.selected) select(state.selected);
    },
    select: (stepId) => {
      const node = byId.get(`step:${stepId}`);
      if (node) select(node);
    },
  };
}

function paintCounts(group, counts) {
  for (const el of group.querySelectorAll('.node[data-step]')) {
    const c = counts[el.dataset.step];
    const line = el.querySelector('.node-counts');
    if (line) line.textContent = c ? countsText(c) : '';
    el.classList.toggle('ran', Boolean(c));
    el.classList.toggle('failed', Boolean(c?.errors));
    if (c) el.dataset.counts = `${c.in}/${c.out}/${c.errors}`;
    else delete el.dataset.counts;
  }
}

/** The fields of a step shown in its panel, beside its id and kind. */
function stepFacts(step) {
  const pairs = [];
  const add = (label, value) => value !== undefined && pairs.push([label, value]);
  add('Connection', step.connection);
  add('Operation', step.operation);
  add('Calls process', step.kind === 'process-call' ? step.process : undefined);
  add('Expression', step.expression);
  add('Condition', step.condition);
  add('Route on', step.value);
  add('Mode', step.mode);
  add('Path', step.path);
  add('Scope', step.scope);
  add('Level', step.level);
  add('Retries', step.retries);
  add('Time limit (ms)', step.timeoutMs);
  return pairs;
}

const jsonBlock = (label, value) => (value === undefined ? null : [h('h3', {}, label), h('pre', { class: 'log' }, JSON.stringify(value, null, 2))]);

/** The default panel: the step's definition (parameters, expressions, connection). */
export function stepDetails(node, { step, definition }) {
  if (node.kind === 'start') {
    const start = definition?.start ?? {};
    return [h('h2', {}, 'Start'), facts([['Kind', start.kind], ...stepFacts(start)]), jsonBlock('Parameters', start.parameters)];
  }
  if (!step) return [h('h2', {}, node.label), h('p', { class: 'error' }, node.kind === 'missing' ? `No step "${node.label}" in the definition.` : node.detail)];
  return [
    h('h2', {}, step.name ?? step.id),
    facts([['Id', step.id], ['Kind', step.kind], ...stepFacts(step)]),
    step.description ? h('p', { class: 'hint' }, step.description) : null,
    step.kind === 'process-call' ? h('p', {}, h('a', { href: `#/deployments/${encodeURIComponent(step.process)}` }, `Open process ${step.process}`)) : null,
    jsonBlock('Parameters', step.parameters),
    jsonBlock('Document properties', step.document),
    jsonBlock('Process properties', step.process && typeof step.process === 'object' ? step.process : undefined),
    jsonBlock('Routes', step.routes),
    jsonBlock('Message', step.message),
  ];
}

function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.map(([k, v]) => [h('dt', {}, k), h('dd', {}, typeof v === 'string' ? v : JSON.stringify(v))]));
}
