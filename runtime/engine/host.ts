/**
 * Isolation mode "process": plugin code (and pure steps) runs in worker threads of a child
 * process, the plugin host (host-main.ts), started under Node's permission model. The host
 * may read only the runtime's own code, the plugin folders and the work folder, and write
 * only the work folder: not `master.key`, not `quark.db`, not the rest of the home. It
 * cannot start child processes or load native addons; it gets an empty environment. What
 * kills the host (a plugin's process.kill that got round the guards, a single allocation
 * past a worker's heap limit, which aborts the whole process, nodejs/node#47224) ends only
 * the host: its tasks in flight fail with QUARK_ERR_PLUGIN_HOST_DIED and the next task
 * starts a new host. This side implements the same WorkerPool as the threads mode.
 *
 * A connection's local folders (fields marked `x-local-path`, connectors/local-paths.ts, and
 * an operation's parameters so marked) come with its tasks (RunOptions.folders). Hosts are
 * keyed by the exact set of folders a task brings: a task runs only in a host granted
 * exactly its own folders (a task with none, in the host granted none), so one tenant's
 * plugin never shares a host with another tenant's folder. At most `maxHosts` hosts take
 * tasks; past that the least recently used is retired, and a host with folders left idle
 * for `idleMs` is too; a host granted a folder that a connection no longer names (revoke)
 * is retired. A retired host ends once its tasks in flight have ended. Each host runs at
 * most `threads` tasks at once; at most twice that are in flight over all hosts. A folder
 * that holds the master key, the store or the
 * configuration, or a read-write folder that holds or is inside plugin code or the
 * runtime's code, is refused: QUARK_ERR_CONNECTION_FOLDER_REFUSED.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { existsSync, realpathSync } from 'node:fs';
import { basename, join, relative, isAbsolute } from 'node:path';
import { quarkError, type QuarkError } from '../core/errors.js';
import { packageRoot } from '../core/paths.js';
import type { LocalFolder, PoolStats, RunOptions, WorkerPool, WorkerPoolOptions } from './pool.js';
import { createSlots } from './connector-pools.js';
import type { HostCommand, HostReport, HostSettings } from './host-messages.js';
import type { OperationResultRef, StepsOutcome, WorkerReply, WorkerTask } from './messages.js';
import { packTask, unpackExits } from './packed.js';
import { crossBytes, toCrossing } from './crossing.js';

export interface HostPoolOptions extends WorkerPoolOptions {
  logger: WorkerPoolOptions['logger'] & { error(fields: object, message: string): void; info?(fields: object, message: string): void };
  /** Folders the host may read: the plugin locations (the runtime's own code is added). */
  reads: string[];
  /** The one folder the host may write (and read): the home's work folder. */
  work: string;
  /** Paths the host must not be able to read: the master key and the store. */
  protect: string[];
  /** Hosts that take tasks at once, one per set of folders (default 4). */
  maxHosts?: number;
  /** How long a host granted folders is kept with no task (default 60 s). */
  idleMs?: number;
}

const hostFile = new URL('./host-main.js', import.meta.url);

/** `--permission` from Node 22 on, `--experimental-permission` on Node 20. */
export function permissionFlag(version = process.versions.node): string {
  return Number(version.split('.')[0]) >= 22 ? '--permission' : '--experimental-permission';
}

/** A path and, when it differs, its real path (Node checks the real one of what it imports). */
function withRealPath(path: string): string[] {
  if (!existsSync(path)) return [path];
  const real = realpathSync(path);
  return real === path ? [path] : [path, real];
}

const inside = (path: string, folder: string) => {
  const rel = relative(folder, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
};

/** Folders granted to the host for connections' local folders: path → may write. */
export type Grants = ReadonlyMap<string, boolean>;

/**
 * A granted folder with what is under it: `<folder>/*`, which covers the folder itself too
 * and works whether it exists yet or not (Node 20 takes a plain path that does not exist for
 * a file, refusing what is made under it later), on Node 20, 22 and 24.
 */
function grantPaths(folder: string): string[] {
  return withRealPath(folder).map((path) => join(path, '*'));
}

/**
 * The allow-list without `<folder>/*` where `<folder>` is on it already: Node 20 aborts at
 * start (an assertion in its permission tree) when given both.
 */
function withoutDoubles(paths: string[]): string[] {
  const unique = new Set(paths);
  return [...unique].filter((path) => !(path.endsWith('/*') && unique.has(path.slice(0, -2))));
}

/** What the host may read: its own code (dist, node_modules, schemas, package.json), plugins, work, granted folders. */
export function hostReads(options: Pick<HostPoolOptions, 'reads' | 'work'>, grants: Grants = new Map()): string[] {
  const own = ['dist', 'node_modules', 'schemas', 'package.json'].map((name) => join(packageRoot, name));
  return withoutDoubles([...own, ...options.reads, options.work].flatMap(withRealPath).concat([...grants.keys()].flatMap(grantPaths)));
}

/** What the host may write: the work folder and the read-write granted folders. */
function hostWrites(options: Pick<HostPoolOptions, 'work'>, grants: Grants): string[] {
  const granted = [...grants].filter(([, write]) => write).flatMap(([path]) => grantPaths(path));
  return withoutDoubles([...withRealPath(options.work), ...granted]);
}

/**
 * The host's command line. Workers are allowed (the host runs its pools in them; the
 * worker guards refuse new ones to plugin code); child processes, addons, WASI and the
 * inspector are not.
 */
export function hostArgs(options: Pick<HostPoolOptions, 'reads' | 'work'>, grants: Grants = new Map()): string[] {
  return [
    permissionFlag(),
    '--allow-worker',
    ...hostReads(options, grants).map((path) => `--allow-fs-read=${path}`),
    ...hostWrites(options, grants).map((path) => `--allow-fs-write=${path}`),
    '--disable-warning=ExperimentalWarning',
    '--disable-warning=SecurityWarning',
  ];
}

/**
 * Why the host may not be granted a connection's folder, or undefined: a folder that holds
 * the master key, the store or the configuration would give them to plugin code; a
 * read-write folder that holds or is inside plugin code or the runtime's own code would let
 * plugin code change what the host runs next.
 */
export function folderRefusal(folder: LocalFolder, options: Pick<HostPoolOptions, 'reads' | 'protect'>): QuarkError | undefined {
  const paths = withRealPath(folder.path);
  const refuse = (why: string) => quarkError('QUARK_ERR_CONNECTION_FOLDER_REFUSED', `the folder ${folder.path} (field ${folder.field}) cannot be given to the plugin host (isolation "process"): ${why}; choose another folder`, { problems: [{ path: folder.field, message: why }] });
  // Node's permission model reads a * in an allow-list entry as a wildcard: it would grant more
  if (paths.some((path) => path.includes('*'))) return refuse('its path has a "*", which Node\'s permission model would read as a wildcard');
  const secret = options.protect.flatMap(withRealPath).find((file) => paths.some((path) => inside(file, path)));
  if (secret) return refuse(`it holds ${basename(secret)}, which plugin code must not read`);
  if (!folder.write) return undefined;
  const code = [packageRoot, ...options.reads].flatMap(withRealPath).find((dir) => paths.some((path) => inside(dir, path) || inside(path, dir)));
  if (code) return refuse('plugin code could change the code the runtime loads there (a read-write folder must not hold or be inside a plugin folder or the runtime\'s own code)');
  return undefined;
}

/** The grants of a task's folders: each path once, writable if any of its fields writes. */
export function grantsOf(folders: readonly LocalFolder[]): Grants {
  const grants = new Map<string, boolean>();
  for (const folder of [...folders].sort((a, b) => a.path.localeCompare(b.path))) grants.set(folder.path, (grants.get(folder.path) ?? false) || folder.write);
  return grants;
}

/** The key of a host: its grants, in order ('' for the host granted none). */
function grantKey(grants: Grants): string {
  return [...grants].map(([path, write]) => `${write ? 'rw' : 'r'}:${path}`).join('\n');
}

/** Whether the grants give a folder (or what holds it, or what it holds). */
function touches(grants: Grants, folder: LocalFolder): boolean {
  return [...grants.keys()].some((path) => inside(folder.path, path) || inside(path, folder.path));
}

const envCommand = '/usr/bin/env';

/**
 * Node and its arguments, through `env -i` where there is one: a spawn hook of the runtime
 * process (an APM agent, tap's process-info) may add variables to the child's environment
 * even though it is given an empty one, such as an `--import` in NODE_OPTIONS, whose
 * module, loaded before the host's code under the permission model, would be refused and
 * end the host. Only the IPC channel's two variables are kept (fd 3: stdio's 'ipc' slot).
 */
function hostCommand(args: string[]): [string, string[]] {
  if (!existsSync(envCommand)) return [process.execPath, args];
  return [envCommand, ['-i', 'NODE_CHANNEL_FD=3', 'NODE_CHANNEL_SERIALIZATION_MODE=advanced', process.execPath, ...args]];
}

/** A folder the host may read that holds the master key or the store defeats the mode: refused. */
function checkProtected(options: HostPoolOptions): void {
  const reads = hostReads(options);
  for (const secret of options.protect.flatMap(withRealPath)) {
    const folder = reads.find((path) => inside(secret, path));
    if (folder) {
      throw quarkError('QUARK_ERR_CONFIG_INVALID', `isolation "process" cannot protect ${secret}: the plugin host may read ${folder} (a plugins.paths entry or the package folder holds the runtime home); move the home or the plugin folder`, { path: '/isolation' });
    }
  }
}

interface Pending {
  task: WorkerTask;
  options: RunOptions;
  resolve(reply: WorkerReply): void;
  reject(error: QuarkError): void;
}

interface Host {
  child: ChildProcess;
  pending: Map<number, Pending>;
  exited: Promise<void>;
  stderrTail(): string;
  /** The folders this host was started with, and their key. */
  grants: Grants;
  key: string;
  /** Takes no more tasks: it ends once its tasks in flight have ended. */
  retired: boolean;
  lastUsed: number;
  idleTimer?: NodeJS.Timeout;
  ending?: Promise<void>;
}

const emptyStats: PoolStats = { threads: 0, idleThreads: 0, queueSize: 0, completed: 0, utilization: 0 };

/**
 * V8's last words when it aborts a process for memory: a heap limit reached in a single
 * allocation (nodejs/node#47224) or an array or string past its largest size.
 */
const outOfMemoryWords = /JavaScript heap out of memory|Fatal JavaScript invalid size error|FatalProcessOutOfMemory|Allocation failed/;

/** What the host wrote last on standard error (forwarded to the runtime's as it comes). */
const stderrTailBytes = 16 * 1024;

export function hostDied(what: string, code: number | null, signal: NodeJS.Signals | null, stderrTail = ''): QuarkError {
  const how = signal ? `signal ${signal}` : `exit code ${code}`;
  if (outOfMemoryWords.test(stderrTail)) {
    return quarkError('QUARK_ERR_PLUGIN_HOST_DIED', `${what} was running in the plugin host process, which ran out of memory and was aborted by V8 (${how}; one allocation past a worker's heap limit, limits.workerHeapMb, ends the whole host); the runtime starts a new host for the next task`, { exitCode: code, signal, outOfMemory: true });
  }
  return quarkError('QUARK_ERR_PLUGIN_HOST_DIED', `${what} was running in the plugin host process, which ended (${how}); the runtime starts a new host for the next task`, { exitCode: code, signal });
}

/** Forwards the host's standard error and keeps its last bytes, to tell why it ended. */
function watchStderr(child: ChildProcess): () => string {
  let tail = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    process.stderr.write(chunk);
    tail = (tail + chunk.toString('utf8')).slice(-stderrTailBytes);
  });
  return () => tail;
}

/** A steps task's outcome with its exits' documents unpacked (they cross the channel packed, packed.ts). */
function unpackedReply(task: WorkerTask, reply: WorkerReply): WorkerReply {
  if (task.kind !== 'steps' || !reply.ok) return reply;
  return { ...reply, value: unpackExits(reply.value as StepsOutcome) };
}

/** The file bodies a reply names: a steps outcome's exits, an operation's result documents. */
function replyFiles(task: WorkerTask, value: unknown): string[] {
  const documents =
    task.kind === 'steps' ? (value as StepsOutcome).exits.flatMap((exit) => exit.documents) : task.kind === 'operation' ? (value as OperationResultRef[]).flatMap((result) => result.documents ?? []) : [];
  return documents.flatMap((d) => (d.body.kind === 'file' ? [d.body.path] : []));
}

/**
 * A file body the host answers is one the task brought or lies (by its real path) in the
 * task's work folder. Plugin code in the host can forge the host's replies, and the runtime
 * that reads those bodies is not confined: without this a body could name the master key or
 * the store, and a later step or the API would read it out.
 */
export function confinedReply(task: WorkerTask, reply: WorkerReply): WorkerReply {
  if (!reply.ok || (task.kind !== 'steps' && task.kind !== 'operation')) return reply;
  const brought = new Set(task.documents.flatMap((d) => (d.body.kind === 'file' ? [d.body.path] : [])));
  const named = replyFiles(task, reply.value).filter((path) => !brought.has(path));
  if (named.length === 0) return reply;
  const work = withRealPath(task.workDir).at(-1)!;
  if (named.every((path) => inside(withRealPath(path).at(-1)!, work))) return reply;
  const error = { code: 'QUARK_ERR_PLUGIN_RESULT_INVALID' as const, message: 'the plugin host answered a body file outside the task\'s work folder; the answer was refused' };
  return { ok: false, error, logs: reply.logs };
}

/** What a host pool answers besides a WorkerPool's: its hosts (tests, logs). */
export interface HostPool extends WorkerPool {
  /** The hosts running now: their process id, folders, and whether they take tasks. */
  hosts(): { pid: number | undefined; folders: string[]; retired: boolean }[];
  revoke(folders: readonly LocalFolder[]): Promise<void>;
}

export function createHostPool(options: HostPoolOptions): HostPool {
  checkProtected(options);
  const settings: HostSettings = { threads: options.threads, heapMb: options.heapMb, ...(options.limits ? { limits: options.limits } : {}) };
  const maxHosts = options.maxHosts ?? 4;
  const idleMs = options.idleMs ?? 60_000;
  // the hosts that take tasks, by key; `hosts` also holds the retired ones still ending
  const live = new Map<string, Host>();
  const hosts = new Set<Host>();
  // each host runs at most `threads` tasks (its connector pools); over all hosts at most
  // twice that are in flight, so each thread has its next task waiting in its host (no
  // round trip between two short tasks) while tasks of several hosts stay bounded
  const slots = createSlots(2 * options.threads);
  let closed = false;
  let nextId = 0;
  let stats = emptyStats;
  let completed = 0;

  /** The host ends its workers and itself; killed if it has not within 10 s. */
  function end(current: Host): Promise<void> {
    current.ending ??= (async () => {
      send(current, { type: 'close' });
      const killer = setTimeout(() => current.child.kill('SIGKILL'), 10_000);
      await current.exited;
      clearTimeout(killer);
    })();
    return current.ending;
  }

  function endIfDrained(current: Host): void {
    if (current.retired && current.pending.size === 0) void end(current);
  }

  /** The host takes no more tasks and ends once its tasks in flight have ended. */
  function retire(current: Host, why: string): void {
    if (current.retired) return;
    current.retired = true;
    clearTimeout(current.idleTimer);
    if (live.get(current.key) === current) live.delete(current.key);
    if (current.grants.size > 0) options.logger.info?.({ host: current.child.pid, folders: [...current.grants.keys()], why }, 'a plugin host granted local folders is retired; it ends when its tasks have ended');
    endIfDrained(current);
  }

  /** More hosts than maxHosts: the least recently used ones go (not the one a task is about to use). */
  function trim(keep: Host): void {
    const others = [...live.values()].filter((h) => h !== keep).sort((a, b) => a.lastUsed - b.lastUsed);
    for (const host of others.slice(0, Math.max(0, live.size - maxHosts))) retire(host, `more than ${maxHosts} plugin hosts`);
  }

  /** The host of a task's folders (checked already), started when none runs. */
  function hostFor(folders: readonly LocalFolder[]): Host {
    const grants = grantsOf(folders);
    const key = grantKey(grants);
    let current = live.get(key);
    if (!current) {
      current = start(grants, key);
      live.set(key, current);
      if (grants.size > 0) options.logger.info?.({ host: current.child.pid, folders: [...grants.keys()] }, 'a plugin host starts for a set of local folders: only tasks that bring exactly these folders run in it');
    }
    clearTimeout(current.idleTimer);
    current.lastUsed = Date.now();
    trim(current);
    return current;
  }

  /** A host granted folders and left with no task is retired after idleMs. */
  function idleLater(current: Host): void {
    if (current.retired || current.pending.size > 0 || current.grants.size === 0) return;
    current.idleTimer = setTimeout(() => retire(current, `no task for ${idleMs} ms`), idleMs);
    current.idleTimer.unref();
  }

  function onReport(current: Host, report: HostReport): void {
    if (report.type === 'ready') return;
    if (report.type === 'log') return options.logger.warn({ ...report.fields, host: current.child.pid }, report.message);
    const pending = current.pending.get(report.id);
    if (!pending) return;
    if (report.type === 'progress') return pending.options.onProgress?.(report.event);
    if (report.type === 'hold') return void answerHold(current, report.id, pending, report.request);
    current.pending.delete(report.id);
    stats = report.stats;
    completed++;
    if (report.type === 'done') pending.resolve(confinedReply(pending.task, unpackedReply(pending.task, report.reply)));
    else pending.reject(quarkError(report.error.code, report.error.message, report.error.details));
    endIfDrained(current);
    idleLater(current);
  }
  async function answerHold(current: Host, id: number, pending: Pending, request: Extract<HostReport, { type: 'hold' }>['request']): Promise<void> {
    let answer;
    try {
      answer = await pending.options.onResource!(request);
    } catch (error) {
      answer = { type: 'resource' as const, request: request.request, ok: false as const, error: { code: 'QUARK_ERR_RESOURCE_NOT_RECORDED' as const, message: `the runtime could not record the resource: ${(error as Error).message}` } };
    }
    send(current, { type: 'resource', id, answer });
  }

  function onExit(current: Host, code: number | null, signal: NodeJS.Signals | null): void {
    clearTimeout(current.idleTimer);
    if (live.get(current.key) === current) live.delete(current.key);
    hosts.delete(current);
    if (!closed && !(current.retired && current.pending.size === 0)) options.logger.error({ exitCode: code, signal, inFlight: current.pending.size }, 'the plugin host process ended; its tasks in flight failed and the next task starts a new host');
    for (const pending of current.pending.values()) pending.reject(hostDied(pending.options.what, code, signal, current.stderrTail()));
    current.pending.clear();
  }

  function start(granted: Grants, key: string): Host {
    const [command, args] = hostCommand([...hostArgs(options, granted), fileURLToPath(hostFile), JSON.stringify(settings)]);
    const child = spawn(command, args, {
      // nothing of the runtime's environment (credentials, tokens) reaches plugin code
      env: {},
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    // 'close': the host has ended and its standard error is read to the end
    const current: Host = { child, pending: new Map(), exited: new Promise((resolve) => child.once('close', () => resolve())), stderrTail: watchStderr(child), grants: granted, key, retired: false, lastUsed: Date.now() };
    hosts.add(current);
    child.on('message', (report: HostReport) => onReport(current, report));
    child.once('close', (code, signal) => onExit(current, code, signal));
    // a failed send or spawn shows as 'exit' too; this only keeps it from being unhandled
    child.on('error', (error) => options.logger.warn({ reason: error.message }, 'the plugin host process reported an error'));
    return current;
  }

  function send(current: Host, command: HostCommand): void {
    if (current.child.connected) current.child.send(command);
  }

  /** A steps task with its large bodies in crossing files (engine/crossing.ts), not in the IPC message. */
  async function crossingTask(task: WorkerTask): Promise<WorkerTask> {
    if (task.kind !== 'steps') return task;
    return { ...task, documents: await toCrossing(task.documents, task.workDir), crossAbove: crossBytes };
  }

  /** Sends a task to its host; the promise settles with the host's answer. */
  function dispatch(current: Host, task: WorkerTask, runOptions: RunOptions): Promise<WorkerReply> {
    const id = ++nextId;
    return new Promise<WorkerReply>((resolve, reject) => {
      const onCancel = () => send(current, { type: 'cancel', id });
      const done = () => runOptions.signal?.removeEventListener('abort', onCancel);
      current.pending.set(id, {
        task,
        options: runOptions,
        resolve: (reply) => (done(), resolve(reply)),
        reject: (error) => (done(), reject(error)),
      });
      runOptions.signal?.addEventListener('abort', onCancel, { once: true });
      const { timeoutMs, graceMs, what } = runOptions;
      send(current, { type: 'run', id, task: packTask(task), timeoutMs, ...(graceMs !== undefined ? { graceMs } : {}), what, holds: runOptions.onResource !== undefined });
    });
  }

  const shuttingDown = (what: string) => quarkError('QUARK_ERR_API_SHUTTING_DOWN', `${what} cannot start: the runtime is closing`);

  return {
    async run(task, runOptions) {
      if (closed) throw shuttingDown(runOptions.what);
      if (runOptions.signal?.aborted) throw quarkError('QUARK_ERR_OPERATION_CANCELLED', `${runOptions.what} was cancelled before it started`);
      for (const folder of runOptions.folders ?? []) {
        const refusal = folderRefusal(folder, options);
        if (refusal) throw refusal;
      }
      // at most 2 × `threads` tasks in flight over all hosts; the others wait here, before their time limit starts
      await slots.take(runOptions.signal, runOptions.what);
      try {
        if (closed) throw shuttingDown(runOptions.what);
        return await dispatch(hostFor(runOptions.folders ?? []), await crossingTask(task), runOptions);
      } finally {
        slots.give();
      }
    },
    stats: () => ({ ...stats, queueSize: stats.queueSize + slots.waiting(), completed }),
    hosts: () => [...hosts].map((h) => ({ pid: h.child.pid, folders: [...h.grants.keys()], retired: h.retired })),
    async revoke(folders) {
      const granted = [...live.values()].filter((h) => folders.some((folder) => touches(h.grants, folder)));
      for (const current of granted) retire(current, 'a connection no longer names one of its folders');
      await Promise.all(granted.map((h) => h.exited));
    },
    packsSteps: true,
    // a steps reply's large output bodies stay in their crossing files: the walker reads in those it needs
    stepsCrossProcess: true,
    async close() {
      closed = true;
      await Promise.all([...hosts].map(end));
    },
  };
}
