import { createHash, randomBytes } from 'node:crypto';
import { newId, nowIso } from '../core/ids.js';
import type { StoreTx, TokenRecord } from '../store/types.js';

const tokenPrefix = 'qk_';

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Creates a token for an account. The plain token is returned once and never stored. */
export async function issueToken(store: Pick<StoreTx, 'tokens'>, accountId: string, name: string): Promise<{ record: TokenRecord; token: string }> {
  const token = tokenPrefix + randomBytes(32).toString('base64url');
  const record: TokenRecord = { id: newId('tok'), accountId, name, hash: hashToken(token), createdAt: nowIso(), revokedAt: null };
  await store.tokens.insert(record);
  return { record, token };
}

export function looksLikeToken(value: string): boolean {
  return value.startsWith(tokenPrefix) && value.length > tokenPrefix.length + 20;
}
