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

/** An expression's value: at once when it is evaluated directly, else JSONata's promise. */
export type Evaluate = (text: string, input: unknown, bindings: ExpressionBindings) => unknown;

/**
 * The answer of a direct evaluation that met a value whose JSONata semantics it does not
 * reproduce (an array: sequences flatten; a type mismatch: JSONata's own error): the
 * expression is then evaluated by JSONata, so the result is JSONata's in every case.
 */
const declined = Symbol('declined');
type Direct = (input: unknown, bindings: ExpressionBindings) => unknown;

/** A JSONata AST node, as much of it as the direct evaluator reads. */
interface Node {
  type: string;
  value?: unknown;
  steps?: Node[];
  lhs?: Node;
  rhs?: Node;
  expressions?: Node[];
  arguments?: Node[];
  procedure?: Node;
}

const only = (node: object, keys: string[]) => Object.keys(node).every((key) => keys.includes(key));
const bound: ReadonlySet<string> = new Set(['properties', 'process', 'execution', 'body']);

/** One own field of a plain object, as JSONata looks it up; anything but an object declines. */
function field(value: unknown, name: string): unknown {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return declined;
  return Object.hasOwn(value, name) ? (value as Record<string, unknown>)[name] : undefined;
}

/** `a.b.c`, `$`, `$properties.x`: plain field names, no predicates, from the input or a binding. */
function directPath(node: Node): Direct | undefined {
  const steps = node.type === 'path' ? node.steps : node.type === 'variable' ? [node] : undefined;
  if (!steps || steps.length === 0 || !only(node, node.type === 'path' ? ['type', 'steps'] : ['type', 'value', 'position'])) return undefined;
  const [head, ...rest] = steps;
  let from: Direct;
  let names: Node[] = steps;
  if (head!.type === 'variable') {
    const variable = head!.value;
    if (variable !== '' && !bound.has(variable as string)) return undefined;
    from = variable === '' ? (input) => input : (_input, bindings) => bindings[variable as keyof ExpressionBindings];
    names = rest;
  } else from = (input) => input;
  if (!names.every((step) => step.type === 'name' && typeof step.value === 'string' && only(step, ['type', 'value', 'position']))) return undefined;
  if (head!.type !== 'variable' && !only(head!, ['type', 'value', 'position'])) return undefined;
  const path = names.map((step) => step.value as string);
  return (input, bindings) => {
    let value = from(input, bindings);
    if (Array.isArray(value)) return declined;
    for (const name of path) {
      value = field(value, name);
      if (value === declined || Array.isArray(value)) return declined;
    }
    return typeof value === 'function' ? declined : value;
  };
}

const ordering: Record<string, (a: number | string, b: number | string) => boolean> = {
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
};
const isScalar = (v: unknown) => v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

/** `=`, `!=`, `<`…, `and`, `or` on direct operands, as JSONata compares (undefined compares false). */
function directBinary(node: Node): Direct | undefined {
  if (!only(node, ['type', 'value', 'position', 'lhs', 'rhs'])) return undefined;
  const op = node.value as string;
  const lhs = node.lhs && directOf(node.lhs);
  const rhs = node.rhs && directOf(node.rhs);
  if (!lhs || !rhs) return undefined;
  if (op === 'and' || op === 'or') {
    return (input, bindings) => {
      const left = lhs(input, bindings);
      if (left === declined) return declined;
      if (op === 'and' ? !truthy(left) : truthy(left)) return op === 'or';
      const right = rhs(input, bindings);
      return right === declined ? declined : truthy(right);
    };
  }
  if (op === '=' || op === '!=') {
    return (input, bindings) => {
      const left = lhs(input, bindings);
      const right = rhs(input, bindings);
      if (left === declined || right === declined) return declined;
      if (left === undefined || right === undefined) return false;
      if (!isScalar(left) || !isScalar(right)) return declined;
      return op === '=' ? left === right : left !== right;
    };
  }
  const compare = ordering[op];
  if (!compare) return undefined;
  return (input, bindings) => {
    const left = lhs(input, bindings);
    const right = rhs(input, bindings);
    if (left === declined || right === declined) return declined;
    const lt = typeof left;
    const rt = typeof right;
    if ((lt === 'number' || lt === 'string') && lt === rt) return compare(left as number | string, right as number | string);
    // JSONata: undefined against a string, a number or undefined is undefined (no match)
    if ((left === undefined && (rt === 'number' || rt === 'string' || right === undefined)) || (right === undefined && (lt === 'number' || lt === 'string'))) return undefined;
    return declined; // JSONata's T2009/T2010
  };
}

/** A name looked up in one item of a path, as JSONata's lookup does (`item[name]`); an array or a function declines. */
function lookup(item: unknown, name: string): unknown {
  if (Array.isArray(item)) return declined;
  if (item === null || typeof item !== 'object') return undefined;
  const found = (item as Record<string, unknown>)[name];
  return typeof found === 'function' ? declined : found;
}

/** The values one path step yields, arrays among them flattened one level (JSONata's evaluateStep). */
function flatten(produced: unknown[]): unknown[] {
  const next: unknown[] = [];
  for (const value of produced) {
    if (Array.isArray(value)) for (const each of value) next.push(each);
    else next.push(value);
  }
  return next;
}

/**
 * `a.b.c` as a function argument: JSONata's sequence of the values along the path, arrays
 * on the way flattened (so `items.price` is every item's price), a single value unwrapped,
 * none undefined, and the last step's one array as it is. An array of arrays declines.
 */
function directValues(node: Node): Direct | undefined {
  const steps = node.type === 'path' && only(node, ['type', 'steps']) ? node.steps : undefined;
  if (!steps || steps.length === 0 || !steps.every((step) => step.type === 'name' && typeof step.value === 'string' && only(step, ['type', 'value', 'position']))) return undefined;
  const names = steps.map((step) => step.value as string);
  return (input) => {
    if (Array.isArray(input)) return declined;
    let items: unknown[] = [input];
    for (const [at, name] of names.entries()) {
      const produced: unknown[] = [];
      for (const item of items) {
        const value = lookup(item, name);
        if (value === declined) return declined;
        if (value !== undefined) produced.push(value);
      }
      if (at === names.length - 1 && produced.length === 1 && Array.isArray(produced[0])) return (produced[0] as unknown[]).some(Array.isArray) ? declined : produced[0];
      items = flatten(produced);
      if (items.length === 0) return undefined;
    }
    return items.length === 1 ? items[0] : items;
  };
}

/** A function's one argument as JSONata validates it against `<a…>`: undefined stays, a single value becomes an array of one. */
function asArray(value: unknown): unknown[] | undefined {
  return value === undefined ? undefined : Array.isArray(value) ? value : [value];
}

const isObject = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** $sum, $count and $merge as JSONata computes them (functions.js); a value of the wrong type declines (JSONata's T0412). */
const aggregates: Record<string, (values: unknown[] | undefined) => unknown> = {
  sum: (values) => {
    if (values === undefined) return undefined;
    let total = 0;
    for (const n of values) {
      if (typeof n !== 'number') return declined;
      total += n;
    }
    return total;
  },
  count: (values) => (values === undefined ? 0 : values.length),
  merge: (values) => {
    if (values === undefined) return undefined;
    if (!values.every(isObject)) return declined;
    const result = Object.create(null) as Record<string, unknown>;
    for (const object of values as Record<string, unknown>[]) for (const key of Object.keys(object)) result[key] = object[key];
    return result;
  },
};

/** `[a, b]` as a function argument: its items' values, undefined ones left out. */
function directArray(node: Node): Direct | undefined {
  if (!only(node, ['type', 'value', 'position', 'expressions']) || !node.expressions) return undefined;
  const items = node.expressions.map((item) => (item.type === 'unary' && item.value === '[' ? undefined : directOf(item)));
  if (!items.every(Boolean)) return undefined;
  return (input, bindings) => {
    const result: unknown[] = [];
    for (const item of items as Direct[]) {
      const value = item(input, bindings);
      if (value === declined || Array.isArray(value)) return declined;
      if (value !== undefined) result.push(value);
    }
    return result;
  };
}

/** `$sum(items.price)`, `$count(x)`, `$merge([$, {…}])`: a built-in aggregate over a path or an array constructor. */
function directFunction(node: Node): Direct | undefined {
  if (node.value !== '(' || !only(node, ['type', 'name', 'value', 'position', 'arguments', 'procedure']) || (node as { name?: unknown }).name !== undefined) return undefined;
  const procedure = node.procedure;
  if (!procedure || procedure.type !== 'variable' || !only(procedure, ['type', 'value', 'position']) || !Object.hasOwn(aggregates, procedure.value as string)) return undefined;
  if (node.arguments?.length !== 1) return undefined;
  const [argument] = node.arguments;
  const values = argument!.type === 'unary' && argument!.value === '[' ? directArray(argument!) : directValues(argument!);
  if (!values) return undefined;
  const aggregate = aggregates[procedure.value as string]!;
  return (input, bindings) => {
    const value = values(input, bindings);
    return value === declined ? declined : aggregate(asArray(value));
  };
}

/** `{"total": …, "id": …}` with literal keys: an object of the values that are not undefined (JSONata's, without a prototype). */
function directObject(node: Node): Direct | undefined {
  const lhs: unknown = node.lhs;
  if (node.value !== '{' || !only(node, ['type', 'value', 'position', 'lhs']) || !Array.isArray(lhs)) return undefined;
  const pairs = lhs as [Node, Node][];
  const keys = pairs.map(([key]) => (key.type === 'string' && typeof key.value === 'string' && only(key, ['type', 'value', 'position']) ? key.value : undefined));
  // the same key twice is JSONata's D1009, its own flags D1013: JSONata says so
  if (keys.some((key) => key === undefined || key === '_jsonata_lambda' || key === '_jsonata_function') || new Set(keys).size !== keys.length) return undefined;
  const values = pairs.map(([, value]) => directOf(value));
  if (!values.every(Boolean)) return undefined;
  return (input, bindings) => {
    // over an array JSONata groups its items by the keys
    if (Array.isArray(input)) return declined;
    const result = Object.create(null) as Record<string, unknown>;
    for (const [i, value] of (values as Direct[]).entries()) {
      const computed = value(input, bindings);
      if (computed === declined) return declined;
      if (computed !== undefined) result[keys[i]!] = computed;
    }
    return result;
  };
}

/**
 * A direct evaluator of the simplest expressions, the most common in processes: field
 * paths, literals, comparisons and and/or of those, object constructors with literal keys,
 * and the aggregates $sum, $count and $merge over paths; undefined for any other. JSONata
 * evaluates every expression through promises and environments, about 2 µs for
 * `customer.id`; this is a property read.
 */
function directOf(node: Node): Direct | undefined {
  switch (node.type) {
    case 'function':
      return directFunction(node);
    case 'unary':
      return node.value === '{' ? directObject(node) : undefined;
    case 'string':
    case 'number':
    case 'value': {
      if (!only(node, ['type', 'value', 'position'])) return undefined;
      const constant = node.value;
      return () => constant;
    }
    case 'path':
    case 'variable':
      return directPath(node);
    case 'binary':
      return directBinary(node);
    default:
      return undefined;
  }
}

interface Compiled {
  expression: jsonata.Expression;
  direct: Direct | undefined;
}

function compile(text: string): Compiled {
  const expression = jsonata(text);
  return { expression, direct: directOf(expression.ast() as unknown as Node) };
}

const comparisons: ReadonlySet<unknown> = new Set(['=', '!=', '<', '<=', '>', '>=', 'and', 'or']);

/**
 * Whether a tree can make nothing larger than its input and its own text, as many times as
 * it has nodes, however JSONata or the direct evaluator evaluates it: what the direct
 * evaluator takes (field paths, literals, comparisons, $sum/$count/$merge of paths),
 * object constructors with literal keys and array constructors of such trees, comparisons
 * and and/or of them. No function of the author's, no binding, no range, no path with a
 * stage or a predicate (`a.{"x": $$}` repeats the input per item).
 */
function boundedTree(node: Node): boolean {
  if (directOf(node)) return true;
  if (node.type === 'unary' && node.value === '[') return only(node, ['type', 'value', 'position', 'expressions']) && (node.expressions ?? []).every(boundedTree);
  if (node.type === 'unary' && node.value === '{') {
    const lhs: unknown = node.lhs;
    if (!only(node, ['type', 'value', 'position', 'lhs']) || !Array.isArray(lhs)) return false;
    return (lhs as [Node, Node][]).every(([key, value]) => key.type === 'string' && only(key, ['type', 'value', 'position']) && boundedTree(value));
  }
  if (node.type === 'binary' && comparisons.has(node.value)) return only(node, ['type', 'value', 'position', 'lhs', 'rhs']) && boundedTree(node.lhs!) && boundedTree(node.rhs!);
  return false;
}

/** How many nodes a JSONata tree has (objects with a `type`, at any depth). */
function nodeCount(value: unknown): number {
  if (Array.isArray(value)) return value.reduce((total: number, item) => total + nodeCount(item), 0);
  if (value === null || typeof value !== 'object') return 0;
  const own = 'type' in value ? 1 : 0;
  return Object.values(value).reduce((total: number, item) => total + nodeCount(item), own);
}

/**
 * How many nodes the expression's tree has when it is bounded (`boundedTree`): its value is
 * never more than that many times its input and its own text. Undefined when it is not
 * (or it does not compile). engine/bounded-steps.ts.
 */
export function boundedNodes(text: string): number | undefined {
  try {
    const ast = jsonata(text).ast() as unknown as Node;
    return boundedTree(ast) ? nodeCount(ast) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * An evaluator with its own compile cache (one per worker). Not async: a direct answer
 * comes back as it is, with no promise made for it; JSONata's comes as its promise.
 */
export function createEvaluator(): Evaluate {
  const compiled = new Map<string, Compiled>();
  return (text, input, bindings) => {
    let entry = compiled.get(text);
    if (!entry) {
      entry = compile(text);
      compiled.set(text, entry);
    }
    if (entry.direct) {
      const value = entry.direct(input, bindings);
      if (value !== declined) return value;
    }
    return entry.expression.evaluate(input, bindings as unknown as Record<string, unknown>) as Promise<unknown>;
  };
}

/** For tests: the direct result of `text`, or "declined" where JSONata evaluates it. */
export function directResult(text: string, input: unknown, bindings: ExpressionBindings): unknown {
  const direct = compile(text).direct;
  if (!direct) return 'not direct';
  const value = direct(input, bindings);
  return value === declined ? 'declined' : value;
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
