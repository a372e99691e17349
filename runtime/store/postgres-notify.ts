/**
 * Messages between the nodes that share a PostgreSQL store: NOTIFY through the store's
 * pool, LISTEN on one connection of its own (a pooled one would be handed to other
 * queries). Channels are scoped to the store's schema, so stores in other schemas of the
 * same database never hear each other. When the listening connection is lost, every
 * handler hears `dropped`; it is opened again with a backoff, and once it listens again
 * every handler hears `resumed`, its cue to read again what it may have missed.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { messageOf } from '../core/errors.js';
import { StoreUnavailableError } from './errors.js';
import type { NotificationHandlers, StoreNotifications } from './types.js';

export interface PostgresNotificationsOptions {
  url: string;
  /** The schema the store lives in (as the server names it, current_schema()). */
  schema: string;
  /** host:port, for messages. */
  address: string;
  /** Runs one statement on the store's pool. */
  query(text: string, values: unknown[]): Promise<unknown>;
  /** The first wait before the listening connection is opened again (default 500 ms; doubling, at most 10 s). */
  retryMs?: number;
}

const channelName = /^[a-z][a-z0-9_]{0,31}$/;
const maxPayloadBytes = 7999;
const maxRetryMs = 10_000;

/** The server's channel for a channel of a schema: short (identifiers end at 63 bytes) and the schema's alone. */
function serverChannel(schema: string, channel: string): string {
  return `quark_${createHash('sha256').update(schema).digest('hex').slice(0, 12)}_${channel}`;
}

interface ListenerState {
  client?: pg.Client;
  connecting?: Promise<pg.Client>;
  retry?: NodeJS.Timeout;
  delayMs: number;
  closed: boolean;
}

export function createPostgresNotifications(options: PostgresNotificationsOptions): StoreNotifications & { close(): Promise<void> } {
  const firstDelayMs = options.retryMs ?? 500;
  const state: ListenerState = { delayMs: firstDelayMs, closed: false };
  /** Server channel → its handlers. */
  const channels = new Map<string, { handlers: Set<NotificationHandlers> }>();

  /** The channels each listening connection LISTENs to. */
  const listening = new WeakMap<pg.Client, Set<string>>();

  const everyHandler = (call: (h: NotificationHandlers) => void): void => {
    for (const { handlers } of channels.values()) for (const h of [...handlers]) call(h);
  };

  function deliver(message: pg.Notification): void {
    for (const h of [...(channels.get(message.channel)?.handlers ?? [])]) h.message(message.payload ?? '');
  }

  /** The listening connection ended or failed: said once to every handler, then opened again later. */
  function lost(client: pg.Client): void {
    if (state.client !== client) return;
    state.client = undefined;
    client.removeAllListeners('notification');
    void client.end().catch(() => undefined);
    if (state.closed) return;
    everyHandler((h) => h.dropped?.());
    scheduleReconnect();
  }

  function scheduleReconnect(): void {
    if (state.closed || state.retry) return;
    state.retry = setTimeout(() => {
      state.retry = undefined;
      connect().then(
        () => {
          state.delayMs = firstDelayMs;
          everyHandler((h) => h.resumed());
        },
        () => {
          state.delayMs = Math.min(state.delayMs * 2, maxRetryMs);
          scheduleReconnect();
        },
      );
    }, state.delayMs);
    state.retry.unref();
  }

  async function open(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: options.url, keepAlive: true, connectionTimeoutMillis: 5000, application_name: 'quark-listen' });
    // an error before or after connect must never be unheard (it would end the process)
    client.on('error', () => lost(client));
    client.on('end', () => lost(client));
    client.on('notification', deliver);
    let ended = false;
    client.once('end', () => (ended = true));
    const listened = new Set<string>();
    listening.set(client, listened);
    try {
      await client.connect();
      for (const server of channels.keys()) {
        await client.query(`LISTEN "${server}"`);
        listened.add(server);
      }
      if (ended) throw new Error('the connection ended as it was opened');
    } catch (error) {
      client.removeAllListeners('notification');
      await client.end().catch(() => undefined);
      throw new StoreUnavailableError(`PostgreSQL at ${options.address} is not reachable for notifications: ${messageOf(error)}`, { cause: error });
    }
    if (state.closed) {
      await client.end().catch(() => undefined);
      throw new StoreUnavailableError(`the PostgreSQL store (${options.address}) is closed`);
    }
    state.client = client;
    return client;
  }

  /** The listening connection, opened once however many callers ask at the same time. */
  function connect(): Promise<pg.Client> {
    if (state.client) return Promise.resolve(state.client);
    state.connecting ??= open().finally(() => {
      state.connecting = undefined;
    });
    return state.connecting;
  }

  function checkChannel(channel: string): void {
    if (!channelName.test(channel)) throw new Error(`notification channel ${JSON.stringify(channel)} must be lower-case letters, digits and _, at most 32`);
  }

  return {
    async notify(channel, payload) {
      checkChannel(channel);
      if (Buffer.byteLength(payload) > maxPayloadBytes) throw new Error(`a notification carries at most ${maxPayloadBytes} bytes; this one has ${Buffer.byteLength(payload)}`);
      await options.query('SELECT pg_notify($1, $2)', [serverChannel(options.schema, channel), payload]);
    },
    async listen(channel, handlers) {
      checkChannel(channel);
      if (state.closed) throw new StoreUnavailableError(`the PostgreSQL store (${options.address}) is closed`);
      const server = serverChannel(options.schema, channel);
      const entry = channels.get(server) ?? { handlers: new Set<NotificationHandlers>() };
      entry.handlers.add(handlers);
      channels.set(server, entry);
      try {
        // a new connection LISTENs to every channel known when it opens; one opened earlier is told of this one
        const client = await connect();
        const listened = listening.get(client);
        if (listened && !listened.has(server)) {
          listened.add(server);
          await client.query(`LISTEN "${server}"`);
        }
      } catch (error) {
        entry.handlers.delete(handlers);
        if (entry.handlers.size === 0) channels.delete(server);
        throw error instanceof StoreUnavailableError ? error : new StoreUnavailableError(`PostgreSQL at ${options.address} refused to listen: ${messageOf(error)}`, { cause: error });
      }
      return () => {
        entry.handlers.delete(handlers);
        if (entry.handlers.size > 0 || channels.get(server) !== entry) return;
        channels.delete(server);
        if (state.client) listening.get(state.client)?.delete(server);
        void state.client?.query(`UNLISTEN "${server}"`).catch(() => undefined);
      };
    },
    async close() {
      state.closed = true;
      if (state.retry) clearTimeout(state.retry);
      state.retry = undefined;
      const client = state.client;
      state.client = undefined;
      await client?.end().catch(() => undefined);
    },
  };
}
