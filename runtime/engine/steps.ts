/**
 * The pure-step interpreter, run in a worker: it walks each document through a run of
 * steps that only compute (map, set properties, decision, route, split, notify,
 * exception, stop) until the document reaches a step that needs the main thread (an
 * operation, a barrier, a process call) or the end of its path. A body is parsed once on
 * the way and serialised once at the exit, whatever the number of steps.
 */
import { readFile } from 'node:fs/promises';
import { messageOf } from '../core/errors.js';
import type { PureStep } from '../processes/definition.js';
import { isExpression } from '../processes/definition.js';
import { inlineRef, packBodies, refOf } from './bodies.js';
import { plainValue, propertyText, truthy, type Evaluate, type ExpressionBindings } from './expressions.js';
import type { BodyRef, DocumentRef, StepCount, StepsOutcome, StepsTask } from './messages.js';

const unparsed = Symbol('unparsed');

interface DocState {
  properties: Record<string, string>;
  body: BodyRef;
  /** $body: the body as it entered this run of steps. */
  entered: { size: number; spilled: boolean };
  value: unknown;
  changed: boolean;
  origins?: number[];
}

class DocumentFailure extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

class ExecutionStop extends Error {}

const maxNotes = 1000;

function valueOf(state: DocState): unknown {
  if (state.value !== unparsed) return state.value;
  let text: string | undefined;
  if (state.body.kind === 'inline') text = state.body.bytes.byteLength === 0 ? undefined : Buffer.from(state.body.bytes.buffer, state.body.bytes.byteOffset, state.body.bytes.byteLength).toString('utf8');
  // a spilled body is not loaded whole for an expression: $ is absent
  if (text === undefined) state.value = undefined;
  else {
    try {
      state.value = JSON.parse(text);
    } catch {
      state.value = text;
    }
  }
  return state.value;
}

async function textOf(state: DocState): Promise<string> {
  if (state.changed || state.body.kind === 'inline') {
    const value = valueOf(state);
    return value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value);
  }
  return readFile(state.body.path, 'utf8');
}

export async function runSteps(task: StepsTask, evaluate: Evaluate, signal: AbortSignal): Promise<StepsOutcome> {
  const process = { ...task.process };
  const outcome: StepsOutcome = { exits: [], failed: [], counts: {}, processUpdates: [], notes: [] };
  const exits = new Map<string, DocumentRef[]>();
  const count = (id: string): StepCount => (outcome.counts[id] ??= { in: 0, out: 0, errors: 0 });

  const bindings = (state: DocState): ExpressionBindings => ({
    properties: state.properties,
    process,
    execution: task.execution,
    body: state.entered,
  });
  const evalIn = async (step: PureStep, text: string, state: DocState): Promise<unknown> => {
    try {
      return await evaluate(text, valueOf(state), bindings(state));
    } catch (error) {
      throw new DocumentFailure('QUARK_ERR_EXPRESSION_FAILED', `step ${step.id}: the expression failed: ${messageOf(error)}`);
    }
  };
  const dynamic = (step: PureStep, value: unknown, state: DocState) => (isExpression(value) ? evalIn(step, value.$expr, state) : Promise.resolve(value));

  async function exit(next: string | null, state: DocState): Promise<void> {
    let body = state.body;
    if (state.changed) {
      const value = state.value;
      const text = value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value);
      // small bodies (nearly all) stay in memory without a detour through a stream
      body = text.length * 3 <= task.spillBytes ? inlineRef(text) : await refOf(text, task.workDir, task.spillBytes, signal);
    }
    const key = next ?? '';
    let group = exits.get(key);
    if (!group) exits.set(key, (group = []));
    group.push({ properties: state.properties, body, ...(state.origins ? { origins: state.origins } : {}) });
  }

  async function walk(first: string | undefined, state: DocState): Promise<void> {
    let id = first;
    while (id !== undefined) {
      const step = task.steps[id];
      if (!step) return exit(id, state); // not a pure step: the main thread takes it from here
      const counts = count(id);
      counts.in++;
      try {
        switch (step.kind) {
          case 'map': {
            // replacing a body the expression cannot see would lose it without a word
            if (!state.changed && state.body.kind === 'file') {
              throw new DocumentFailure('QUARK_ERR_EXPRESSION_FAILED', `step ${step.id}: the body (${state.body.size} bytes) is larger than limits.spillBytes and was spilled to disk; a map cannot read it. Route such documents around the map (for example a decision on $body.spilled) or raise limits.spillBytes`);
            }
            const value = await evalIn(step, step.expression, state);
            if (value === undefined) throw new DocumentFailure('QUARK_ERR_EXPRESSION_FAILED', `step ${step.id}: the map expression produced no value for this document`);
            state.value = value;
            state.changed = true;
            id = step.next;
            break;
          }
          case 'set-properties': {
            for (const [name, raw] of Object.entries(step.document ?? {})) {
              const value = await dynamic(step, raw, state);
              if (value === undefined || value === null) delete state.properties[name];
              else state.properties[name] = propertyText(value);
            }
            for (const [name, raw] of Object.entries(step.process ?? {})) {
              const value = plainValue(await dynamic(step, raw, state));
              process[name] = value;
              outcome.processUpdates.push([name, value]);
            }
            id = step.next;
            break;
          }
          case 'decision':
            id = truthy(await evalIn(step, step.condition, state)) ? step.ifTrue : step.ifFalse;
            break;
          case 'route': {
            const value = await evalIn(step, step.value, state);
            const text = value === undefined ? undefined : propertyText(value);
            const match = step.routes.find((r) => String(r.equals) === text);
            id = match ? match.next : step.default;
            break;
          }
          case 'split': {
            const children = await split(step, state);
            counts.out += children.length;
            for (const child of children) await walk(step.next, child);
            return;
          }
          case 'notify': {
            const message = propertyText(await dynamic(step, step.message, state));
            if (outcome.notes.length < maxNotes) outcome.notes.push({ step: step.id, level: step.level ?? 'info', message });
            id = step.next;
            break;
          }
          case 'exception': {
            const message = propertyText(await dynamic(step, step.message, state));
            if (step.scope === 'execution') {
              outcome.stop = { step: step.id, message };
              throw new ExecutionStop(message);
            }
            throw new DocumentFailure('QUARK_ERR_PROCESS_EXCEPTION', message);
          }
          case 'stop':
            return;
        }
      } catch (error) {
        if (error instanceof ExecutionStop) throw error;
        counts.errors++;
        const failure = error instanceof DocumentFailure ? error : new DocumentFailure('QUARK_ERR_EXPRESSION_FAILED', `step ${step.id}: ${messageOf(error)}`);
        outcome.failed.push({ step: step.id, code: failure.code, message: failure.message, ...(state.origins ? { origins: state.origins } : {}) });
        return;
      }
      counts.out++;
    }
    return exit(null, state);
  }

  async function split(step: Extract<PureStep, { kind: 'split' }>, state: DocState): Promise<DocState[]> {
    const child = (value: unknown): DocState => ({ properties: { ...state.properties }, body: state.body, entered: state.entered, value, changed: true, ...(state.origins ? { origins: state.origins } : {}) });
    if (step.mode === 'lines') {
      const text = await textOf(state);
      return text.split(/\r?\n/).filter((line) => line.length > 0).map(child);
    }
    const array = step.path === undefined ? valueOf(state) : await evalIn(step, step.path, state);
    if (!Array.isArray(array)) throw new DocumentFailure('QUARK_ERR_PROCESS_SPLIT_FAILED', `step ${step.id}: ${step.path === undefined ? 'the body' : 'the path expression'} is not a JSON array`);
    return array.map(child);
  }

  try {
    for (const document of task.documents) {
      if (signal.aborted) break;
      const entered = document.body.kind === 'inline' ? { size: document.body.bytes.byteLength, spilled: false } : { size: document.body.size, spilled: true };
      await walk(task.first, { properties: { ...document.properties }, body: document.body, entered, value: unparsed, changed: false, ...(document.origins ? { origins: document.origins } : {}) });
    }
  } catch (error) {
    if (!(error instanceof ExecutionStop)) throw error;
  }
  outcome.exits = [...exits].map(([key, documents]) => ({ next: key === '' ? null : key, documents }));
  return outcome;
}

/** The outcome with its output bodies packed in one buffer, to be transferred to the main thread. */
export function packOutcome(outcome: StepsOutcome): { outcome: StepsOutcome; buffer: ArrayBuffer } {
  const all = packBodies(outcome.exits.flatMap((e) => e.documents));
  let at = 0;
  const exits = outcome.exits.map((e) => ({ next: e.next, documents: all.documents.slice(at, (at += e.documents.length)) }));
  return { outcome: { ...outcome, exits }, buffer: all.buffer };
}
