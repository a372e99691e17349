/**
 * Molecules for tests: a fresh PostgreSQL database and a BullMQ key prefix of their own
 * on the shared Redis (QUARK_TEST_REDIS_URL), homes made with the real CLI (`quark init
 * --kind molecule`, then `--join`), short timings. Without both servers the tests that
 * need them are skipped, saying why.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freshDatabase, postgresUrl } from './postgres.js';
import { cli, fixturePlugins, root, startRuntime, tempDir, until, type Running } from './quark.js';

export const redisUrl: string | undefined = process.env.QUARK_TEST_REDIS_URL || undefined;

export const moleculeSkip: false | string =
  postgresUrl && redisUrl
    ? false
    : 'SKIPPED: a molecule needs PostgreSQL and Redis: QUARK_TEST_POSTGRES_URL and QUARK_TEST_REDIS_URL are not both set (.ci/run starts them with ../shared/tools/services)';

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** Short timings, so that a test sees heartbeats, stalls and the reconciler within seconds. */
export const testTimings = { heartbeatMs: 1000, lockMs: 3000, stalledCheckMs: 1000, reconcileMs: 1000, nodeLostMs: 5000, drainMs: 20000 };

/** A BullMQ key prefix for one test; its keys are deleted at teardown. */
export function freshPrefix(t: Teardown, url = redisUrl!): string {
  const prefix = `quark_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  t.teardown(async () => {
    const redis = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => null });
    redis.on('error', () => undefined);
    try {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
        cursor = next;
        if (keys.length > 0) await redis.del(...keys);
      } while (cursor !== '0');
    } finally {
      redis.disconnect();
    }
  });
  return prefix;
}

/** Merges changes into a home's config.json (limits and cluster key by key). */
export function configure(home: string, changes: Record<string, any>): void {
  const file = join(home, 'config.json');
  const config = JSON.parse(readFileSync(file, 'utf8'));
  for (const [key, value] of Object.entries(changes)) {
    config[key] = value !== null && typeof value === 'object' && !Array.isArray(value) && typeof config[key] === 'object' ? { ...config[key], ...value } : value;
  }
  writeFileSync(file, JSON.stringify(config, null, 2));
}

export interface MoleculeHomes {
  storeUrl: string;
  homes: string[];
  ownerToken: string;
  /** The first home's master.key. */
  keyFile: string;
  prefix: string;
}

/** `quark init --kind molecule` for the first home, `quark init --join` for the others; each with the counter-kit plugin and short timings. */
export async function moleculeHomes(t: Teardown, count: number, limits: Record<string, unknown> = {}, queueUrl = redisUrl!): Promise<MoleculeHomes> {
  const storeUrl = await freshDatabase(t);
  const prefix = freshPrefix(t, queueUrl);
  const dir = tempDir(t, 'quark-molecule-');
  const homes = Array.from({ length: count }, (_, i) => join(dir, `node-${i}`));
  const first = await cli(['--json', 'init', '--home', homes[0]!, '--kind', 'molecule', '--owner', 'acme', '--port', '0', '--store', storeUrl, '--queue', queueUrl]);
  if (first.code !== 0) throw new Error(`init failed: ${first.stderr}`);
  const keyFile = join(homes[0]!, 'master.key');
  for (const home of homes.slice(1)) {
    const joined = await cli(['init', '--home', home, '--join', storeUrl, '--key-file', keyFile, '--port', '0']);
    if (joined.code !== 0) throw new Error(`join failed: ${joined.stderr}`);
  }
  for (const home of homes) {
    configure(home, { plugins: { paths: [join(fixturePlugins, 'counter-kit')] }, cluster: testTimings, queue: { prefix }, limits: { workerThreads: 1, ...limits } });
  }
  return { storeUrl, homes, ownerToken: first.json().ownerToken, keyFile, prefix };
}

/**
 * A local HTTP server that counts the bodies POSTed to it: the side effect of each run.
 * With `holdMs` it answers each request that much later, and `maxInFlight` is the most
 * requests it held at once: how many runs were inside their step together.
 */
export async function counterServer(t: Teardown, holdMs = 0): Promise<{ url: string; counts: Map<string, number>; maxInFlight(): number } & Gates> {
  const counts = new Map<string, number>();
  const gates = createGates();
  const flight = { now: 0, max: 0 };
  const body = async (request: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  };
  const hold = () => new Promise((resolve) => (holdMs > 0 ? setTimeout(resolve, holdMs) : resolve(undefined)));
  const server = createServer((request, response) => {
    if (request.url?.startsWith('/gate/')) return gates.arrive(decodeURIComponent(request.url.slice('/gate/'.length)), response);
    flight.now += 1;
    flight.max = Math.max(flight.max, flight.now);
    void body(request)
      .then(async (text) => {
        counts.set(text, (counts.get(text) ?? 0) + 1);
        await hold();
        response.end('counted');
      })
      .finally(() => (flight.now -= 1));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/count`, counts, maxInFlight: () => flight.max, open: gates.open, aborted: gates.aborted };
}

/** The counter server's gates: a `count` step with a `gate` parameter waits at its gate until the test opens it. */
interface Gates {
  /** Lets the requests waiting at the gate, and every later one, through. */
  open(name: string): void;
  /** How many requests left the gate before it opened (their run was stopped: the plugin's signal aborted the request). */
  aborted(name: string): number;
}

function createGates(): Gates & { arrive(name: string, response: ServerResponse): void } {
  const gates = new Map<string, { open: boolean; waiting: Set<ServerResponse>; aborted: number }>();
  const gate = (name: string) => gates.get(name) ?? gates.set(name, { open: false, waiting: new Set(), aborted: 0 }).get(name)!;
  return {
    arrive(name, response) {
      const g = gate(name);
      if (g.open) return void response.end('open');
      g.waiting.add(response);
      response.on('close', () => {
        if (g.waiting.delete(response) && !response.writableEnded) g.aborted += 1;
      });
    },
    open(name) {
      const g = gate(name);
      g.open = true;
      for (const response of g.waiting) response.end('open');
      g.waiting.clear();
    },
    aborted: (name) => gate(name).aborted,
  };
}

/** One node's API as the owner: `/api/v1` paths. */
export type Api = (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>;

export const apiOf = (rt: Running, token: string): Api => (method, path, body) => rt.api(method, `/api/v1${path}`, token, body);

export const terminal = (status: string): boolean => !['queued', 'in-process'].includes(status);

/** Polls one node's API until the execution has ended; its view. */
export const ended = (api: Api, id: string) =>
  until(`execution ${id} to end`, async () => {
    const view = (await api('GET', `/executions/${id}`)).body;
    return view && terminal(view.status) ? view : undefined;
  });

/** The node id of a running node, as the nodes list of `api`'s node shows it (once it announced its address). */
export const nodeIdOf = async (api: Api, rt: Running): Promise<string | undefined> => ((await api('GET', '/nodes')).body as any[]).find((n) => n.address === rt.url)?.id;

export interface StartedMolecule extends MoleculeHomes {
  counter: Awaited<ReturnType<typeof counterServer>>;
  /** The started nodes, by home index (undefined for one not started). */
  nodes: Running[];
  /** Node i's API. */
  api(i: number): Api;
  /** Starts (or starts again) node i. */
  start(i: number, env?: Record<string, string>): Promise<Running>;
  /** Waits until every started node is listed with its address; node id by node index. */
  nodeIds(): Promise<string[]>;
}

export interface MoleculeOptions {
  /** limits of every node's config.json. */
  limits?: Record<string, unknown>;
  /** The nodes started at once (home indexes); all by default. */
  start?: number[];
  /** Changes to node i's config.json before it starts (configure()). */
  config?: (i: number) => Record<string, any> | undefined;
  /** Environment of node i's process. */
  env?: (i: number) => Record<string, string> | undefined;
  queueUrl?: string;
  /** The counter server's answer delay (counterServer). */
  holdMs?: number;
}

/**
 * The molecule set-up of the cluster tests: `count` homes (moleculeHomes), the counter
 * server, the nodes started as child processes, and the connection "counter" (made on the
 * first node started) that `counting` processes use.
 */
export async function startMolecule(t: Teardown, count: number, options: MoleculeOptions = {}): Promise<StartedMolecule> {
  const made = await moleculeHomes(t, count, options.limits ?? {}, options.queueUrl ?? redisUrl!);
  for (const [i, home] of made.homes.entries()) {
    const changes = options.config?.(i);
    if (changes) configure(home, changes);
  }
  const counter = await counterServer(t, options.holdMs);
  const nodes: Running[] = [];
  const start = async (i: number, env?: Record<string, string>) => (nodes[i] = await startRuntime(t, made.homes[i]!, [], { ...options.env?.(i), ...env }));
  const first = options.start ?? made.homes.map((_, i) => i);
  await Promise.all(first.map((i) => start(i)));
  const api = (i: number) => apiOf(nodes[i]!, made.ownerToken);
  if (first.length > 0) {
    const made201 = await api(first[0]!)('POST', '/connections', { name: 'counter', connector: 'counter-kit', config: { url: counter.url } });
    if (made201.status !== 201) throw new Error(`the counter connection was not made: ${JSON.stringify(made201.body)}`);
  }
  const nodeIds = () =>
    until('every started node listed with its address', async () => {
      const running = nodes.map((rt, i) => [rt, i] as const).filter(([rt]) => rt && rt.child.exitCode === null && rt.child.signalCode === null);
      const list = (await api(running[0]![1])('GET', '/nodes')).body as any[];
      const ids = nodes.map((rt) => (rt ? list.find((n) => n.address === rt.url)?.id : undefined));
      return running.every(([, i]) => ids[i]) ? (ids as string[]) : undefined;
    });
  return { ...made, counter, nodes, api, start, nodeIds };
}

/** A process that counts its one document at the counter. */
export const counting = (id: string, sleepMs = 0, gate?: string) => ({
  id,
  name: id,
  start: { kind: 'documents', next: 'count' },
  steps: [{ id: 'count', kind: 'operation', connection: 'counter', operation: 'count', parameters: { sleepMs, ...(gate ? { gate } : {}) } }],
});

/** The one document a start passes in: its body is the tag the counter counts. */
export const tagged = (tag: string) => ({ documents: [{ body: tag }] });

/**
 * The services tool: QUARK_TEST_SERVICES_TOOL (.ci/run sets it: its Node 22 pass runs from
 * a copy in /tmp), else ../shared/tools/services beside the repository (or beside the
 * folder of its worktrees).
 */
const services = [process.env.QUARK_TEST_SERVICES_TOOL, join(root, '..', 'shared', 'tools', 'services'), join(root, '..', '..', 'shared', 'tools', 'services')]
  .find((d): d is string => d !== undefined && existsSync(join(d, 'start.sh')));

/** Why a test that needs a Redis of its own is skipped, if it is. */
export const ownRedisSkip: false | string = moleculeSkip || (services ? false : 'SKIPPED: ../shared/tools/services/start.sh is not there to start a Redis of the test\'s own');

/**
 * A Redis of the test's own (a restart test must not touch the shared one), started as
 * ../shared/tools/services/start.sh starts it (AOF, noeviction) on a free port; stopped
 * and removed at teardown. `restart` runs start.sh again: the same port and data folder.
 */
export async function ownRedis(t: Teardown): Promise<{ url: string; port: number; dir: string; restart(): Promise<void> }> {
  const dir = tempDir(t, 'quark-redis-');
  const start = () => run('bash', [join(services!, 'start.sh'), dir, '--redis'], { REDIS_PORT: existsSync(join(dir, 'redis.port')) ? '' : '0' });
  await start();
  t.teardown(() => run('bash', [join(services!, 'stop.sh'), dir]));
  const port = Number(readFileSync(join(dir, 'redis.port'), 'utf8').trim());
  return { url: `redis://127.0.0.1:${port}`, port, dir, restart: async () => void (await start()) };
}

/** A command, resolved when it exits 0 (its output in the rejection otherwise). */
export function run(command: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env: { ...process.env, ...env } }, (error, stdout, stderr) => (error ? reject(new Error(`${command} ${args.join(' ')}: ${stderr || error.message}`)) : resolve(stdout)));
  });
}
