/**
 * The process definition as data (schemas/process.schema.json is its contract). Types
 * only: validation is in validate.ts, execution in engine/walker.ts.
 */
import { escapePointer } from '../core/json-pointer.js';

export type Expression = string;
/** A literal JSON value or {"$expr": "…"} evaluated per document. */
export type DynamicValue = unknown;

export type StartDefinition =
  | { kind: 'none'; next?: string }
  | { kind: 'documents'; next?: string }
  | { kind: 'operation'; connection: string; operation: string; parameters?: Record<string, DynamicValue>; timeoutMs?: number; next?: string };

interface StepBase {
  id: string;
  name?: string;
  description?: string;
}

export interface OperationStep extends StepBase {
  kind: 'operation';
  connection: string;
  operation: string;
  parameters?: Record<string, DynamicValue>;
  timeoutMs?: number;
  next?: string;
}
/** A pure step's own time limit: see engine/walker.ts segmentTimeout. */
interface PureStepBase extends StepBase {
  timeoutMs?: number;
}

export interface MapStep extends PureStepBase { kind: 'map'; expression: Expression; next?: string }
export interface SetPropertiesStep extends PureStepBase {
  kind: 'set-properties';
  document?: Record<string, DynamicValue>;
  process?: Record<string, DynamicValue>;
  next?: string;
}
export interface DecisionStep extends PureStepBase { kind: 'decision'; condition: Expression; ifTrue?: string; ifFalse?: string }
export interface RouteStep extends PureStepBase {
  kind: 'route';
  value: Expression;
  routes: { equals: string | number | boolean; next?: string }[];
  default?: string;
}
export interface BranchStep extends StepBase { kind: 'branch'; paths: string[] }
export interface SplitStep extends PureStepBase { kind: 'split'; mode: 'json-array' | 'lines'; path?: Expression; next?: string }
export interface CombineStep extends StepBase { kind: 'combine'; mode: 'json-array' | 'lines'; next?: string }
export interface TryStep extends StepBase { kind: 'try'; try: string; catch: string; retries?: number; retryDelayMs?: number }
export interface ExceptionStep extends PureStepBase { kind: 'exception'; message: DynamicValue; scope?: 'document' | 'execution' }
export interface StopStep extends StepBase { kind: 'stop' }
export interface ProcessCallStep extends StepBase { kind: 'process-call'; process: string; next?: string }
export interface NotifyStep extends PureStepBase { kind: 'notify'; message: DynamicValue; level?: 'info' | 'warning' | 'error'; next?: string }

export type Step =
  | OperationStep
  | MapStep
  | SetPropertiesStep
  | DecisionStep
  | RouteStep
  | BranchStep
  | SplitStep
  | CombineStep
  | TryStep
  | ExceptionStep
  | StopStep
  | ProcessCallStep
  | NotifyStep;

/** Steps that only compute (no I/O, no barrier): a run of them is walked in one worker task. */
export type PureStep = MapStep | SetPropertiesStep | DecisionStep | RouteStep | SplitStep | ExceptionStep | StopStep | NotifyStep;

const pureKinds = new Set<Step['kind']>(['map', 'set-properties', 'decision', 'route', 'split', 'exception', 'stop', 'notify']);
export const isPure = (step: Step): step is PureStep => pureKinds.has(step.kind);

export interface ProcessDefinition {
  $schema?: string;
  id: string;
  name: string;
  description?: string;
  start: StartDefinition;
  steps: Step[];
  properties?: Record<string, { description?: string; default?: unknown; persist?: boolean }>;
  options?: { timeoutMs?: number; recordStepData?: boolean; retryOnNodeLoss?: boolean };
}

/** The steps a step sends documents to, with the JSON pointer of each reference. */
export function targetsOf(step: Step, base: string): { id: string; path: string }[] {
  const out: { id: string; path: string }[] = [];
  const add = (id: string | undefined, field: string) => {
    if (id !== undefined) out.push({ id, path: `${base}/${field}` });
  };
  switch (step.kind) {
    case 'decision':
      add(step.ifTrue, 'ifTrue');
      add(step.ifFalse, 'ifFalse');
      break;
    case 'route':
      step.routes.forEach((r, i) => add(r.next, `routes/${i}/next`));
      add(step.default, 'default');
      break;
    case 'branch':
      step.paths.forEach((p, i) => add(p, `paths/${i}`));
      break;
    case 'try':
      add(step.try, 'try');
      add(step.catch, 'catch');
      break;
    case 'exception':
    case 'stop':
      break;
    default:
      add(step.next, 'next');
  }
  return out;
}

export const isExpression = (value: unknown): value is { $expr: string } =>
  value !== null && typeof value === 'object' && !Array.isArray(value) && typeof (value as { $expr?: unknown }).$expr === 'string';

/** Every expression of a step with its JSON pointer (for compiling at deploy). */
export function expressionsOf(step: Step | StartDefinition, base: string): { expression: string; path: string }[] {
  const out: { expression: string; path: string }[] = [];
  const dynamic = (value: unknown, path: string) => {
    if (isExpression(value)) out.push({ expression: value.$expr, path: `${path}/$expr` });
  };
  const record = (values: Record<string, unknown> | undefined, path: string) => {
    for (const [key, value] of Object.entries(values ?? {})) dynamic(value, `${path}/${escapePointer(key)}`);
  };
  switch (step.kind) {
    case 'operation':
      record(step.parameters, `${base}/parameters`);
      break;
    case 'map':
      out.push({ expression: step.expression, path: `${base}/expression` });
      break;
    case 'set-properties':
      record(step.document, `${base}/document`);
      record(step.process, `${base}/process`);
      break;
    case 'decision':
      out.push({ expression: step.condition, path: `${base}/condition` });
      break;
    case 'route':
      out.push({ expression: step.value, path: `${base}/value` });
      break;
    case 'split':
      if (step.path !== undefined) out.push({ expression: step.path, path: `${base}/path` });
      break;
    case 'exception':
    case 'notify':
      dynamic(step.message, `${base}/message`);
      break;
    default:
  }
  return out;
}
