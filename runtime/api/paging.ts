/**
 * Paging of the API's lists: an opaque cursor (base64url of the list's name and the sort
 * key of the last row served) and a limit. A list keeps one stable order by a unique key,
 * so a page goes on from its cursor with nothing skipped or repeated. A cursor that this
 * list did not give out is a 400 QUARK_ERR_API_CURSOR_INVALID.
 */
import { quarkError } from '../core/errors.js';

/** Query strings are text (the API does not coerce types): a positive integer as digits. */
export const positiveInteger = { type: 'string', pattern: '^[1-9][0-9]{0,8}$' } as const;

/** A page when `limit` is not given (with a cursor, or on a list that is always paged). */
export const defaultPageSize = 50;
export const maxPageSize = 1000;

/** The query string fields of a paged list (query strings are text: the limit as digits). */
export const pageQuerySchema = {
  cursor: { type: 'string', minLength: 1, maxLength: 2000 },
  limit: positiveInteger,
  q: { type: 'string', minLength: 1, maxLength: 200 },
} as const;

export interface PageQuery {
  cursor?: string;
  limit?: string;
  q?: string;
}

export function pageSize(limit: string | undefined): number {
  return limit === undefined ? defaultPageSize : Math.min(Number(limit), maxPageSize);
}

export function encodeCursor(list: string, key: string[]): string {
  return Buffer.from(JSON.stringify({ v: 1, list, after: key })).toString('base64url');
}

/** The sort key a cursor of `list` holds (`size` strings), or the 400 that says it is not one. */
export function decodeCursor(list: string, cursor: string, size: number): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalidCursor(list);
  }
  const after = (parsed as { after?: unknown } | null)?.after;
  const valid = typeof parsed === 'object' && parsed !== null && (parsed as { v?: unknown }).v === 1 && (parsed as { list?: unknown }).list === list;
  if (!valid || !Array.isArray(after) || after.length !== size || !after.every((k) => typeof k === 'string')) throw invalidCursor(list);
  return after as string[];
}

/** The 400 for a cursor that `list` did not give out. */
export function invalidCursor(list: string, nextField = 'nextCursor') {
  const message = `"cursor" is not a cursor of the ${list} list: pass on the ${nextField} of a page of it as it was given, or start again without a cursor`;
  return quarkError('QUARK_ERR_API_CURSOR_INVALID', `the request is not valid: ${message}`, { problems: [{ path: '/querystring/cursor', message }] });
}

function compareKeys(a: string[], b: string[]): number {
  for (let i = 0; i < a.length; i++) {
    if (a[i]! !== b[i]!) return a[i]! < b[i]! ? -1 : 1;
  }
  return 0;
}

/**
 * A page of a list held in memory, ordered by `keyOf` (unique, ascending). Without a
 * cursor or a limit, the whole list and no cursor (as before paging existed).
 */
export function pageOf<T>(list: string, items: T[], order: { keyOf: (item: T) => string[]; length: number }, query: PageQuery): { items: T[]; nextCursor?: string } {
  const { keyOf, length } = order;
  const sorted = items.map((item) => ({ item, key: keyOf(item) })).sort((a, b) => compareKeys(a.key, b.key));
  if (query.cursor === undefined && query.limit === undefined) return { items: sorted.map((s) => s.item) };
  const after = query.cursor === undefined ? undefined : decodeCursor(list, query.cursor, length);
  const rest = after === undefined ? sorted : sorted.filter((s) => compareKeys(s.key, after) > 0);
  const size = pageSize(query.limit);
  const page = rest.slice(0, size);
  const more = rest.length > size;
  return { items: page.map((s) => s.item), ...(more ? { nextCursor: encodeCursor(list, page.at(-1)!.key) } : {}) };
}

/** Whether one of `values` holds `search`, ignoring case (no search: every value). */
export function matches(search: string | undefined, ...values: (string | undefined)[]): boolean {
  if (search === undefined) return true;
  const needle = search.toLowerCase();
  return values.some((v) => v !== undefined && v.toLowerCase().includes(needle));
}
