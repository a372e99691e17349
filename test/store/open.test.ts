import t from 'tap';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { StoreUnavailableError } from '../../runtime/store/errors.js';
import { describeStore, openStore } from '../../runtime/store/open.js';
import { tempDir } from '../helpers/quark.js';
import { closedPort, freshDatabase, postgresSkip, postgresUrl } from '../helpers/postgres.js';

interface Logged {
  level: 'warn' | 'info';
  object: Record<string, unknown>;
  message: string;
}

function recordingLogger(): { logger: NonNullable<Parameters<typeof openStore>[1]['logger']>; lines: Logged[]; next: (n: number) => Promise<void> } {
  const lines: Logged[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const push = (line: Logged): void => {
    lines.push(line);
    for (const w of waiters.filter((w) => lines.length >= w.n)) w.resolve();
  };
  return {
    lines,
    logger: { warn: (object, message) => push({ level: 'warn', object, message }), info: (object, message) => push({ level: 'info', object, message }) },
    next: (n) => new Promise((resolve) => (lines.length >= n ? resolve() : waiters.push({ n, resolve }))),
  };
}

/** A loopback port nothing listens on (taken, then given back). */
/** Listens on `port` and forwards every connection to `target`: PostgreSQL "coming up" on that port. */
async function forwarder(port: number, target: URL): Promise<{ server: Server; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection({ host: target.hostname, port: Number(target.port) });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, sockets };
}

t.test('sqlite by default: the home file', async (t) => {
  const file = join(tempDir(t, 'quark-open-'), 'quark.db');
  const store = await openStore(undefined, { file, quarkVersion: 'test' });
  t.teardown(() => store.close());
  await store.ping();
  t.equal(describeStore(undefined), 'sqlite (quark.db in the home)');
  t.equal(describeStore({ kind: 'postgres', url: 'postgres://quark:s3cret@db.local:6543/quark' }), 'postgres at db.local:6543', 'host and port, never the password');
});

t.test('PostgreSQL not there at start: logged with host and port, retried with backoff, never the password; abort stops it', async (t) => {
  const port = await closedPort();
  const { logger, lines, next } = recordingLogger();
  const abort = new AbortController();
  const opening = openStore({ kind: 'postgres', url: `postgres://quark:hunter2@127.0.0.1:${port}/quark` }, { file: '', quarkVersion: 'test', logger, signal: abort.signal, retry: { firstMs: 10, maxMs: 40 } });
  await next(4);
  abort.abort();
  await t.rejects(opening, StoreUnavailableError, 'an aborted wait rejects with the last failure');
  t.match(lines[0], { level: 'warn', message: `PostgreSQL at 127.0.0.1:${port} is not reachable; retrying in 10 ms`, object: { store: `127.0.0.1:${port}`, attempt: 1 } });
  t.same(lines.slice(0, 4).map((l) => l.message.replace(/.*retrying in /, '')), ['10 ms', '20 ms', '40 ms', '40 ms'], 'the delay doubles up to its cap');
  t.notMatch(JSON.stringify(lines), /hunter2/, 'the password is in no line');
});

t.test('PostgreSQL that comes up while the runtime waits: the store opens', { skip: postgresSkip }, async (t) => {
  const target = new URL(await freshDatabase(t));
  const port = await closedPort();
  const url = new URL(target);
  url.port = String(port);
  const { logger, lines, next } = recordingLogger();
  const opening = openStore({ kind: 'postgres', url: url.toString(), poolSize: 2 }, { file: '', quarkVersion: 'test', logger, retry: { firstMs: 10, maxMs: 100 } });
  await next(2);
  const proxy = await forwarder(port, target);
  t.teardown(() => {
    for (const s of proxy.sockets) s.destroy();
    proxy.server.close();
  });
  const store = await opening;
  t.teardown(() => store.close());
  await store.ping();
  t.match(lines.at(-1), { level: 'info', message: `PostgreSQL at 127.0.0.1:${port} answers; the store is open` });
  t.ok(lines.filter((l) => l.level === 'warn').length >= 2, 'after the failed attempts');
});

t.test('postgres config: a URL of the test server opens a migrated store', { skip: postgresSkip }, async (t) => {
  const store = await openStore({ kind: 'postgres', url: await freshDatabase(t) }, { file: '', quarkVersion: 'test' });
  t.teardown(() => store.close());
  t.same(await store.accounts.list(), []);
  t.ok(postgresUrl);
});
