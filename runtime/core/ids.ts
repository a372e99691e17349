import { randomBytes } from 'node:crypto';

/** Short, URL-safe, prefixed identifiers: `conn_4Kq…`. The prefix says what the id names. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('base64url')}`;
}

export function nowIso(): string {
  return new Date().toISOString();
}
