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

/**
 * JSONata's error in words: its own message, its code (T2001, D3137 for $error()…) and the
 * character it points at. JSONata throws plain objects, not Errors, so String() of one
 * reads "[object Object]".
 */
export function expressionFailure(error: unknown): string {
  if (error instanceof Error && !('code' in error)) return error.message;
  const e = (error ?? {}) as { message?: unknown; code?: unknown; position?: unknown };
  const message = typeof e.message === 'string' && e.message !== '' ? e.message : String(error);
  const where = [typeof e.code === 'string' ? `JSONata ${e.code}` : undefined, typeof e.position === 'number' ? `at character ${e.position}` : undefined].filter(Boolean);
  return where.length > 0 ? `${message} (${where.join(', ')})` : message;
}

/** The syntax error of an expression, or undefined when it compiles. */
export function expressionError(text: string): string | undefined {
  try {
    jsonata(text);
    return undefined;
  } catch (error) {
    return `is not a valid JSONata expression: ${expressionFailure(error)}`;
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
    return expression.evaluate(input, bindings as unknown as Record<string, unknown>) as Promise<unknown>;
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
