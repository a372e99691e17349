/**
 * JSONata expressions: compiled once per worker (a cache keyed by the text), evaluated
 * per document with the bindings $properties, $process and $execution. The main thread
 * only compiles them, at deploy, to report syntax errors with their position.
 */
import jsonata from 'jsonata';

export interface ExecutionInfo {
  id: string;
  process: string;
  version: number | null;
  trigger: string;
}

export interface ExpressionBindings {
  properties: Record<string, string>;
  process: Record<string, unknown>;
  execution: ExecutionInfo;
  /** The body's size in bytes, and whether it was spilled to disk (then `$` is absent). */
  body?: { size: number; spilled: boolean };
}

/** The syntax error of an expression, or undefined when it compiles. */
export function expressionError(text: string): string | undefined {
  try {
    jsonata(text);
    return undefined;
  } catch (error) {
    const e = error as { message?: string; position?: number };
    return `is not a valid JSONata expression: ${e.message ?? String(error)}${e.position !== undefined ? ` (at character ${e.position})` : ''}`;
  }
}

export type Evaluate = (text: string, input: unknown, bindings: ExpressionBindings) => Promise<unknown>;

/** An evaluator with its own compile cache (one per worker). */
export function createEvaluator(): Evaluate {
  const compiled = new Map<string, jsonata.Expression>();
  return async (text, input, bindings) => {
    let expression = compiled.get(text);
    if (!expression) {
      expression = jsonata(text);
      compiled.set(text, expression);
    }
    return expression.evaluate(input, bindings as unknown as Record<string, unknown>);
  };
}

/** JSONata's sequences are arrays with extra flags; hand plain JSON values on. */
export function plainValue(value: unknown): unknown {
  if (value === undefined || value === null || typeof value !== 'object') return value;
  return JSON.parse(JSON.stringify(value)) as unknown;
}

/** A value as a property string: strings as they are, anything else as JSON. */
export function propertyText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** JSONata's $boolean() casting, without a second evaluation. */
export function truthy(value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string') return value.length > 0;
  if (typeof value === 'number') return value !== 0;
  if (typeof value === 'function') return false;
  if (Array.isArray(value)) return value.some(truthy);
  return Object.keys(value).length > 0;
}
