import { randomFillSync } from 'node:crypto';

const idBytes = 12;
// random bytes for 256 ids, filled at once: one call into the CSPRNG per 256 ids, not per id
const pool = Buffer.allocUnsafe(idBytes * 256);
let offset = pool.length;

/** Short, URL-safe, prefixed identifiers: `conn_4Kq…`. The prefix says what the id names. */
export function newId(prefix: string): string {
  if (offset + idBytes > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const id = pool.toString('base64url', offset, offset + idBytes);
  offset += idBytes;
  return `${prefix}_${id}`;
}

export function nowIso(): string {
  return new Date().toISOString();
}
