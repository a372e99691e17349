/**
 * Opens the store a runtime's configuration names (`store` in config.json): the embedded
 * SQLite file of the home (the default) or a PostgreSQL database. A PostgreSQL server
 * that does not answer at start is waited for, with backoff, saying so in the log.
 */
import { messageOf } from '../core/errors.js';
import { StoreUnavailableError } from './errors.js';
import { openPostgresStore, postgresAddress } from './postgres-store.js';
import { openSqliteStore } from './sqlite-store.js';
import type { Store } from './types.js';

/** `store` of config.json (schemas/runtime-config.schema.json). */
export type StoreConfig = { kind: 'sqlite' } | { kind: 'postgres'; url: string; poolSize?: number };

/** The default pool size of a PostgreSQL store. */
export const defaultPoolSize = 10;

export interface OpenStoreOptions {
  /** The home's SQLite file (`<home>/quark.db`), for `kind: "sqlite"`. */
  file: string;
  /** This quark's version, recorded with each migration it applies. */
  quarkVersion: string;
  /** Where "not reachable; retrying" goes. */
  logger?: { warn(object: Record<string, unknown>, message: string): void; info(object: Record<string, unknown>, message: string): void };
  /** Stops the waiting (the runtime is closing before its store answered). */
  signal?: AbortSignal;
  /** Backoff between attempts: from `firstMs`, doubling, at most `maxMs` (defaults 500 and 30000). */
  retry?: { firstMs: number; maxMs: number };
  /** false: a PostgreSQL that cannot be reached rejects at once (quark init) instead of being waited for. */
  wait?: boolean;
}

/** How a store configuration is shown to people (`quark info`, logs): never the password. */
export function describeStore(config: StoreConfig | undefined): string {
  if (config?.kind !== 'postgres') return 'sqlite (quark.db in the home)';
  return `postgres at ${postgresAddress(config.url)}`;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Opens a PostgreSQL store, trying again with backoff while the server cannot be reached. */
async function openPostgresWaiting(config: Extract<StoreConfig, { kind: 'postgres' }>, options: OpenStoreOptions): Promise<Store> {
  const address = postgresAddress(config.url);
  const { firstMs, maxMs } = options.retry ?? { firstMs: 500, maxMs: 30_000 };
  let delay = firstMs;
  for (let attempt = 1; ; attempt++) {
    try {
      const store = await openPostgresStore({ url: config.url, poolSize: config.poolSize ?? defaultPoolSize }, options.quarkVersion);
      if (attempt > 1) options.logger?.info({ store: address, attempts: attempt }, `PostgreSQL at ${address} answers; the store is open`);
      return store;
    } catch (error) {
      if (!(error instanceof StoreUnavailableError) || options.wait === false || options.signal?.aborted) throw error;
      const seconds = delay >= 1000 ? `${Math.round(delay / 1000)} s` : `${delay} ms`;
      options.logger?.warn({ store: address, attempt, cause: messageOf(error.cause ?? error) }, `PostgreSQL at ${address} is not reachable; retrying in ${seconds}`);
      await pause(delay, options.signal);
      if (options.signal?.aborted) throw error;
      delay = Math.min(delay * 2, maxMs);
    }
  }
}

/** The configured store, open and migrated. */
export async function openStore(config: StoreConfig | undefined, options: OpenStoreOptions): Promise<Store> {
  if (config?.kind === 'postgres') return openPostgresWaiting(config, options);
  return openSqliteStore(options.file);
}
