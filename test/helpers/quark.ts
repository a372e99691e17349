/**
 * Test harness: drives the real CLI (`dist/runtime/cli/main.js`) and the real HTTP API of
 * runtimes started as child processes, as a user would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freshDatabase } from './postgres.js';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const cliPath = join(root, 'dist', 'runtime', 'cli', 'main.js');
export const fixturePlugins = join(root, 'test', 'fixtures', 'plugins');

/**
 * The clean environment of a child process (PATH and HOME only, so no QUARK_* of the
 * machine leaks in), plus, when tap measures coverage, NODE_V8_COVERAGE pointing at tap's
 * coverage folder: the runtime's main thread and its worker threads then write their
 * coverage there too, and the report counts what the child-process tests ran.
 */
export function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const measuring = process.env._TAPJS_PROCESSINFO_COVERAGE_ === '1';
  const coverage = process.env.NODE_V8_COVERAGE ?? (measuring ? join(process.env._TAPJS_PROCESSINFO_CWD_ ?? root, '.tap', 'coverage') : undefined);
  return { PATH: process.env.PATH, HOME: process.env.HOME, ...(coverage ? { NODE_V8_COVERAGE: coverage } : {}), ...extra } as NodeJS.ProcessEnv;
}

/** Long enough for a runtime on a loaded machine to end its executions and close. */
const stopGraceMs = 60_000;

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  json<T = any>(): T;
}

/** Runs `quark <args>`; env adds to (and may override) a clean environment. */
export function cli(args: string[], env: Record<string, string | undefined> = {}, input?: string): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], {
      env: childEnv({ QUARK_PROFILE: join(tmpdir(), 'quark-test-no-profile.json'), ...env }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) =>
      resolvePromise({
        code: code ?? -1,
        stdout,
        stderr,
        json() {
          return JSON.parse(stdout || stderr);
        },
      }),
    );
    child.stdin.end(input ?? '');
  });
}

/** The pause after the nth probe of `until`: 20 ms growing to 200 ms, so a quick answer is seen at once and a long wait costs few requests. */
export const pollPauseMs = (probes: number): number => Math.min(200, Math.round(20 * 1.5 ** probes));

/**
 * Polls `probe` until it returns a value, for what the tests cannot be told about by an
 * event (a record in the store, a line in a log); generous for a loaded machine.
 */
export async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, ms = 120_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (let probes = 0; ; probes++) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollPauseMs(probes)));
  }
}

export function tempDir(t: Teardown, prefix = 'quark-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface InitOptions {
  kind?: 'atom' | 'molecule' | 'cloud';
  ownerName?: string;
  /** Changes merged into config.json after init (limits are merged key by key). */
  config?: Record<string, any>;
  /** The store kind, whatever QUARK_TEST_STORE says ('postgres' needs QUARK_TEST_POSTGRES_URL). */
  store?: 'sqlite' | 'postgres';
}

export interface Home {
  home: string;
  ownerToken: string;
  runtimeId: string;
  ownerId: string;
}

/**
 * `--store <url>` for `quark init` when the tests run on PostgreSQL (QUARK_TEST_STORE=postgres):
 * a fresh database on QUARK_TEST_POSTGRES_URL for each home, dropped at teardown.
 */
export async function testStoreArgs(t: Teardown, kind = process.env.QUARK_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite'): Promise<string[]> {
  if (kind !== 'postgres') return [];
  if (!process.env.QUARK_TEST_POSTGRES_URL) throw new Error('QUARK_TEST_STORE=postgres needs QUARK_TEST_POSTGRES_URL');
  return ['--store', await freshDatabase(t)];
}

/** `quark init` into a fresh temporary home, then applies config changes. */
export async function initHome(t: Teardown, options: InitOptions = {}): Promise<Home> {
  const home = join(tempDir(t), 'home');
  const store = await testStoreArgs(t, options.store);
  const result = await cli(['--json', 'init', '--home', home, '--kind', options.kind ?? 'atom', '--owner', options.ownerName ?? 'acme', '--port', '0', ...store]);
  if (result.code !== 0) throw new Error(`init failed: ${result.stderr}`);
  const out = result.json();
  if (options.config) {
    const file = join(home, 'config.json');
    const config = JSON.parse(readFileSync(file, 'utf8'));
    const { limits, ...rest } = options.config;
    Object.assign(config, rest);
    config.limits = { ...config.limits, ...(limits ?? {}) };
    writeFileSync(file, JSON.stringify(config, null, 2));
  }
  return { home, ownerToken: out.ownerToken, runtimeId: out.runtime.id, ownerId: out.owner.id };
}

export interface Running {
  url: string;
  child: ChildProcess;
  /** Everything the runtime wrote to stdout and stderr so far. */
  output(): string;
  api<T = any>(method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; body: T }>;
  /** Env for `cli()` that logs in as the given token. */
  as(token: string): Record<string, string>;
  /** Sends a signal and waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Resolves once the runtime has printed a line matching `pattern` (an event, not a wait). */
export function untilOutput(rt: Running, pattern: RegExp): Promise<void> {
  return new Promise((resolvePromise) => {
    const check = () => {
      if (!pattern.test(rt.output())) return;
      rt.child.stdout?.off('data', check);
      rt.child.stderr?.off('data', check);
      resolvePromise();
    };
    rt.child.stdout?.on('data', check);
    rt.child.stderr?.on('data', check);
    check();
  });
}

/** `quark start` on a free port; resolves when it prints its URL. */
export function startRuntime(t: Teardown, home: string, extraArgs: string[] = [], env: Record<string, string> = {}): Promise<Running> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [cliPath, 'start', '--home', home, '--port', '0', '--log-level', 'debug', ...extraArgs], {
      env: childEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const exited: Promise<number | null> = new Promise((r) => child.on('exit', (code) => r(code)));
    let started = false;
    const onData = (d: Buffer) => {
      output += d;
      const match = /listening on (https?:\/\/\S+)/.exec(output);
      if (match && !started) {
        started = true;
        const url = match[1]!;
        resolvePromise({
          url,
          child,
          output: () => output,
          async api(method, path, token, body) {
            const response = await fetch(url + path, {
              method,
              headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
              ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
            });
            const text = await response.text();
            let parsed: any = text;
            try {
              parsed = text ? JSON.parse(text) : undefined;
            } catch {
              /* metrics and other text bodies */
            }
            return { status: response.status, body: parsed };
          },
          as: (token) => ({ QUARK_URL: url, QUARK_TOKEN: token }),
          async stop(signal = 'SIGTERM') {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            return exited;
          },
        });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      if (!started) reject(new Error(`runtime exited with ${code} before listening:\n${output}`));
    });
    // SIGTERM first, so the runtime closes as a user's would and writes its coverage;
    // SIGKILL only for one that has not ended long after
    t.teardown(async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), stopGraceMs);
      await exited;
      clearTimeout(killer);
    });
  });
}
