/**
 * Nesting depth of JSON values, measured without recursion: JSON.parse accepts any
 * depth, but JSON.stringify, structuredClone (every message to a worker) and most
 * recursive code overflow the stack somewhere between 2,000 and 10,000 levels. The
 * runtime refuses values nested deeper than limits.maxNestingDepth where they enter
 * (request bodies, process definitions, values computed by steps), with the pointer of
 * the place where the limit is passed.
 */
import { quarkError } from './errors.js';
import { escapePointer } from './json-pointer.js';

/** The default of limits.maxNestingDepth (schemas/runtime-config.schema.json). */
export const defaultMaxNestingDepth = 500;

export interface TooDeep {
  /** JSON pointer of the first value found at depth maxDepth + 1. */
  path: string;
  maxDepth: number;
}

const isContainer = (value: unknown): value is object => value !== null && typeof value === 'object';

interface Visit {
  value: unknown;
  depth: number;
  parent: Visit | undefined;
  key: string;
}

/** The pointer from the root to a visited value, built only when one is too deep. */
function pointerOf(visit: Visit): string {
  const segments: string[] = [];
  for (let at: Visit | undefined = visit; at?.parent; at = at.parent) segments.push(escapePointer(at.key));
  return segments.reverse().map((s) => `/${s}`).join('');
}

/**
 * Where `value` nests deeper than `maxDepth` containers (an object or array is one
 * level: `[[1]]` has depth 2, a scalar 0), or undefined when it does not. Iterative, so
 * it answers for any depth; each container is visited once.
 */
export function findTooDeep(value: unknown, maxDepth: number): TooDeep | undefined {
  const stack: Visit[] = [{ value, depth: 0, parent: undefined, key: '' }];
  while (stack.length > 0) {
    const visit = stack.pop()!;
    const current = visit.value;
    if (!isContainer(current)) continue;
    const depth = visit.depth + 1;
    if (depth > maxDepth) return { path: pointerOf(visit), maxDepth };
    if (Array.isArray(current)) {
      for (let i = current.length - 1; i >= 0; i--) {
        if (isContainer(current[i])) stack.push({ value: current[i], depth, parent: visit, key: String(i) });
      }
    } else {
      for (const [key, child] of Object.entries(current)) if (isContainer(child)) stack.push({ value: child, depth, parent: visit, key });
    }
  }
  return undefined;
}

/**
 * Whether JSON text (as JSON.stringify writes it) nests deeper than `maxDepth` containers,
 * the same depth as findTooDeep of its value; strings are skipped, so brackets in them do
 * not count. A scan of the text, with no allocation: cheaper than walking the value.
 */
export function jsonTextNestsDeeper(text: string, maxDepth: number): boolean {
  // no more brackets than the limit (counted natively, strings included): it cannot nest deeper
  const braces = countOpenings(text, '{', maxDepth);
  if (braces + countOpenings(text, '[', maxDepth - braces) <= maxDepth) return false;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) i = endOfString(text, i);
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > maxDepth) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/**
 * How many times `bracket` is in the text, counted up to `limit + 1` (brackets inside
 * strings too: an upper bound of the containers it opens). indexOf is native and fast,
 * so a text with few brackets (nearly every document) needs no scan of its strings.
 */
function countOpenings(text: string, bracket: '{' | '[', limit: number): number {
  let count = 0;
  for (let at = text.indexOf(bracket); at >= 0 && count <= limit; at = text.indexOf(bracket, at + 1)) count++;
  return count;
}

/** The index of the quote that closes the string opening at `open` (escaped quotes skipped). */
function endOfString(text: string, open: number): number {
  let at = text.indexOf('"', open + 1);
  while (at > 0) {
    let backslashes = 0;
    while (text.charCodeAt(at - 1 - backslashes) === 0x5c) backslashes++;
    if (backslashes % 2 === 0) return at;
    at = text.indexOf('"', at + 1);
  }
  return text.length;
}

/** The words for a value found too deep at `path` (relative to what the reader sent). */
export function tooDeepMessage(found: TooDeep): string {
  return `nests deeper than ${found.maxDepth} levels of objects and arrays (limits.maxNestingDepth); flatten the value`;
}

/**
 * The request-boundary form: a QUARK_ERR_API_NESTING_TOO_DEEP error when a parsed body
 * nests too deep, its pointer under `base` (`/body/…`, as the API's other problems).
 */
export function checkBodyDepth(body: unknown, maxDepth: number, base = '/body'): void {
  const found = findTooDeep(body, maxDepth);
  if (!found) return;
  const problem = { path: `${base}${found.path}`, message: tooDeepMessage(found) };
  const shown = problem.path.length > 120 ? `${problem.path.slice(0, 120)}…` : problem.path;
  throw quarkError('QUARK_ERR_API_NESTING_TOO_DEEP', `the request body ${problem.message} (at ${shown})`, { problems: [problem] });
}
