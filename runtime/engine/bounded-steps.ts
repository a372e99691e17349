/**
 * Isolation "threads" runs pure steps in a plugin host process, so that an expression that
 * makes V8 abort for memory (one allocation past a worker's heap limit, nodejs/node#47224)
 * ends only the host. A chunk that cannot grow past a small bound needs no such wall: it
 * runs in the runtime's own worker threads, without the two IPC messages and the host's
 * hop to its worker (about half a millisecond of CPU for a small execution, bench/RESULTS.md
 * "latency12"). Bounded means: every step is a map, set-properties, decision, route or stop
 * whose expressions are all bounded trees (engine/expressions.ts `boundedNodes`: field
 * paths, literals, object and array constructors, comparisons, $sum/$count/$merge; no
 * function of the author's, binding, range or loop: a value at most as many times its
 * input and its text as its tree has nodes), every body is in memory, and that factor, multiplied over the steps, times the
 * documents, properties and the steps' own text, stays under `boundedStepsBytes`. Anything
 * else (a JSONata function, a split, a spilled body, a larger chunk) goes to the host.
 */
import { isExpression, type PureStep } from '../processes/definition.js';
import { boundedNodes } from './expressions.js';
import type { StepsTask } from './messages.js';

/** The most a bounded chunk may make: far below any worker heap (limits.workerHeapMb ≥ 32). */
export const boundedStepsBytes = 256 * 1024;

interface StepsBound {
  /** Output ≤ factor × (input + text). */
  factor: number;
  /** The steps' own text (their literals). */
  text: number;
}

const expressionNodes = new Map<string, number | undefined>();
const maxCachedExpressions = 10_000;

function nodesOf(text: string): number | undefined {
  if (expressionNodes.has(text)) return expressionNodes.get(text);
  const nodes = boundedNodes(text);
  if (expressionNodes.size >= maxCachedExpressions) expressionNodes.clear();
  expressionNodes.set(text, nodes);
  return nodes;
}

/** A set-properties value: an expression's nodes, a literal's 1 (its text is counted with the step's). */
function valueFactor(value: unknown): number | undefined {
  return isExpression(value) ? nodesOf(value.$expr) : 1;
}

/** How many times its input one step's values may be; undefined: the step is not bounded. */
function stepFactor(step: PureStep): number | undefined {
  switch (step.kind) {
    case 'map':
      return nodesOf(step.expression);
    case 'decision':
      return nodesOf(step.condition);
    case 'route':
      return nodesOf(step.value);
    case 'set-properties': {
      // the properties it sets come on top of the document
      let factor = 1;
      for (const value of [...Object.values(step.document ?? {}), ...Object.values(step.process ?? {})]) {
        const f = valueFactor(value);
        if (f === undefined) return undefined;
        factor += f;
      }
      return factor;
    }
    case 'stop':
      return 1;
    default:
      return undefined;
  }
}

const bounds = new WeakMap<Record<string, PureStep>, StepsBound | null>();

function boundOf(steps: Record<string, PureStep>): StepsBound | undefined {
  const known = bounds.get(steps);
  if (known !== undefined) return known ?? undefined;
  let factor = 1;
  for (const step of Object.values(steps)) {
    const f = stepFactor(step);
    factor = f === undefined ? Infinity : factor * Math.max(1, f);
    if (factor > boundedStepsBytes) break;
  }
  const bound = factor > boundedStepsBytes ? null : { factor, text: JSON.stringify(steps).length };
  bounds.set(steps, bound);
  return bound ?? undefined;
}

/** The bytes a chunk brings: bodies in memory, document and process properties; undefined when a body is spilled. */
function inputBytes(task: StepsTask): number | undefined {
  let bytes = JSON.stringify(task.process).length;
  for (const document of task.documents) {
    if (document.body.kind !== 'inline') return undefined;
    bytes += document.body.bytes.byteLength + JSON.stringify(document.properties).length;
  }
  return bytes;
}

/** Whether a steps task is bounded (above): the runtime's own threads may run it. */
export function boundedSteps(task: StepsTask): boolean {
  const bound = boundOf(task.steps);
  if (!bound) return false;
  const input = inputBytes(task);
  return input !== undefined && bound.factor * (input + bound.text) <= boundedStepsBytes;
}
