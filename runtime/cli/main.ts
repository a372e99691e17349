#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { QuarkError, quarkError, messageOf, type FieldProblem } from '../core/errors.js';
import { createRuntime, defaultHome, defaultPort, homeExists, initHome, joinHome, createSchemaRegistry, describeStore, quarkVersion, type RuntimeKind, type ConnectionView, type TestConnectionResult, type TokenView, scaffoldConnector, lintConnector, probeConnectorFolder, formatProblems, CannotLintError, type SpecProblem } from '../index.js';
import { serve } from '../api/server.js';
import { createApiClient, type ApiClient, type ClientError } from './client.js';
import { loadProfile, profilePath, removeProfile, saveProfile } from './profile.js';
import { exitCodeFor, exitCodes } from './exit-codes.js';
import { registerProcessCommands } from './processes.js';
import { registerOperationCommands } from './operations.js';
import { block, statusMark, table } from './output.js';
import { parseJsonFile, parseSet, parseSetJson, typeSetValues } from './config-input.js';

interface GlobalOptions {
  json?: boolean;
}

const program = new Command('quark')
  .description('quark: a lightweight integration runtime')
  .version(quarkVersion)
  .option('--json', 'print JSON instead of text')
  .showHelpAfterError()
  // usage errors (unknown option, bad choice) exit with the invalid-input code; set before
  // the sub-commands are made so that they inherit it
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : exitCodes.invalid));

const globals = (): GlobalOptions => program.opts<GlobalOptions>();
const out = (text: string) => process.stdout.write(text + '\n');
const client = (): ApiClient => createApiClient(loadProfile());

function emit(value: unknown, human: () => string): void {
  out(globals().json ? JSON.stringify(value, null, 2) : human());
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

interface ConfigOptions {
  file?: string;
  set?: Record<string, string>;
  setJson?: Record<string, unknown>;
  clear?: string[];
}

function hasConfig(options: ConfigOptions): boolean {
  return Boolean(options.file || options.set || options.setJson || options.clear);
}

async function connectionSchemaOf(api: ApiClient, connector: string): Promise<unknown> {
  return (await api.call<{ connectionSchema: unknown }>('GET', `/connectors/${encodeURIComponent(connector)}`)).connectionSchema;
}

/** The configuration given on the command line; `--set` values typed by the connector's schema, read only when needed. */
async function configFrom(options: ConfigOptions, schema: () => Promise<unknown>): Promise<Record<string, unknown>> {
  const typed = options.set ? typeSetValues(await schema(), options.set) : {};
  const config: Record<string, unknown> = { ...(options.file ? parseJsonFile(options.file) : {}), ...typed, ...(options.setJson ?? {}) };
  for (const key of options.clear ?? []) config[key] = null;
  return config;
}

const setOption = ['--set <key=value>', 'set a field; the text is typed by the connector\'s schema (repeatable)'] as const;
const setJsonOption = ['--set-json <key=json>', 'set a field to a JSON value, e.g. --set-json tags=\'["a"]\' (repeatable)'] as const;

function showConnection(c: ConnectionView): string {
  const secrets = Object.entries(c.secrets).map(([pointer, set]) => [`${pointer.slice(1)} (secret)`, set ? 'set' : 'not set'] as [string, unknown]);
  return block([
    ['id', c.id],
    ['name', c.name],
    ['connector', c.connector],
    ...Object.entries(c.config).map(([k, v]) => [k, v] as [string, unknown]),
    ...secrets,
    ['revision', c.revision],
    ['updated', c.updatedAt],
    ...(c.problems ?? []).map((p) => ['problem', `${p.path} ${p.code}: ${p.message}`] as [string, unknown]),
  ]);
}

function showTestResult(result: TestConnectionResult): string {
  const head = `Test Connection ${result.status.toUpperCase()} (${result.connector}${result.connection ? ` "${result.connection.name}"` : ''}, ${result.durationMs} ms)`;
  const lines = result.checks.map((c) => `  ${statusMark(c.status)} ${c.title ?? c.id}: ${c.message}${c.code ? ` [${c.code}]` : ''}`);
  return [head, ...lines].join('\n');
}

// ---- runtime home -----------------------------------------------------------------

/** `--store`: "sqlite" (the default) or a PostgreSQL URL; the schema checks the URL's form. */
function storeOption(value: string | undefined): { kind: 'sqlite' } | { kind: 'postgres'; url: string } | undefined {
  if (value === undefined) return undefined;
  if (value === 'sqlite') return { kind: 'sqlite' };
  if (!/^postgres(ql)?:\/\//.test(value)) throw quarkError('QUARK_ERR_CLI_INPUT_INVALID', '--store expects "sqlite" or a PostgreSQL URL: postgres://user:password@host:port/database');
  return { kind: 'postgres', url: value };
}

/** `--queue`: a Redis URL (BullMQ). */
function queueOption(value: string | undefined): { kind: 'bullmq'; url: string } | undefined {
  if (value === undefined) return undefined;
  if (!/^rediss?:\/\/[^/?#]+/.test(value)) throw quarkError('QUARK_ERR_CLI_INPUT_INVALID', '--queue expects a Redis URL: redis://[user:password@]host:port[/db]');
  return { kind: 'bullmq', url: value };
}

/** `quark init --join postgres://… --key-file master.key`: a new node of a molecule. */
async function joinNode(home: string, options: { join?: string; keyFile?: string; host: string; port: number; store?: string; queue?: string }): Promise<void> {
  if (!options.join || !options.keyFile) throw quarkError('QUARK_ERR_CLI_INPUT_INVALID', '--join <postgres URL> and --key-file <master.key> go together');
  if (!/^postgres(ql)?:\/\//.test(options.join)) throw quarkError('QUARK_ERR_CLI_INPUT_INVALID', '--join expects the molecule\'s PostgreSQL URL: postgres://user:password@host:port/database');
  if (options.store || options.queue) throw quarkError('QUARK_ERR_CLI_INPUT_INVALID', '--join takes the store and the queue from the molecule; leave out --store and --queue');
  const { config, paths } = await joinHome({ home, storeUrl: options.join, keyFile: resolve(options.keyFile), host: options.host, port: options.port }, createSchemaRegistry());
  emit({ home: paths.home, runtime: { id: config.id, name: config.name, kind: config.kind }, owner: config.owner, store: describeStore(config.store) }, () =>
    [
      `Joined molecule "${config.name}" (${config.id}) in ${paths.home}`,
      `Owner account: ${config.owner.name} (${config.owner.id})`,
      `Store: ${describeStore(config.store)}`,
      '',
      `Start it:  quark start --home ${paths.home}`,
      'Tokens are the cluster\'s: log in with one made on any node.',
    ].join('\n'),
  );
}

program
  .command('init')
  .description('create a runtime home bound to an owner account; prints the owner token once')
  .option('--home <dir>', 'runtime home (default: $QUARK_HOME or ~/.quark)')
  .option('--name <name>', 'runtime name', 'quark')
  .addOption(new Option('--kind <kind>', 'runtime kind').choices(['atom', 'molecule', 'cloud']).default('atom'))
  .option('--owner <account>', 'name of the owner account', 'owner')
  .option('--host <host>', 'listen address', '127.0.0.1')
  .option('--port <port>', 'listen port', (v) => Number.parseInt(v, 10), defaultPort)
  .option('--proxy <host:port>', 'runtime-level HTTP proxy for connectors')
  .option('--store <url>', 'keep the records in PostgreSQL (postgres://user:password@host:port/database, an empty database) instead of the home\'s quark.db')
  .option('--queue <url>', 'with --kind molecule and a PostgreSQL --store: the cluster\'s queue, redis://[user:password@]host:port[/db]')
  .option('--join <url>', 'add a node to the molecule whose PostgreSQL database this is (with --key-file)')
  .option('--key-file <file>', 'with --join: a copy of the molecule\'s master.key')
  .action(async (options: { home?: string; name: string; kind: RuntimeKind; owner: string; host: string; port: number; proxy?: string; store?: string; queue?: string; join?: string; keyFile?: string }) => {
    const home = options.home ?? defaultHome();
    if (options.join !== undefined || options.keyFile !== undefined) return joinNode(home, options);
    let proxy: { host: string; port: number } | undefined;
    if (options.proxy) {
      const match = /^(.+):(\d+)$/.exec(options.proxy);
      if (!match) throw quarkError('QUARK_ERR_CLI_INPUT_INVALID', '--proxy expects host:port');
      proxy = { host: match[1]!, port: Number(match[2]) };
    }
    const store = storeOption(options.store);
    const queue = queueOption(options.queue);
    const init = { home, name: options.name, kind: options.kind, ownerName: options.owner, host: options.host, port: options.port, ...(proxy ? { proxy } : {}), ...(store ? { store } : {}), ...(queue ? { queue } : {}) };
    const { config, ownerToken, paths } = await initHome(init, createSchemaRegistry());
    emit({ home: paths.home, runtime: { id: config.id, name: config.name, kind: config.kind }, owner: config.owner, store: describeStore(config.store), ownerToken }, () =>
      [
        `Created ${config.kind} runtime "${config.name}" (${config.id}) in ${paths.home}`,
        `Owner account: ${config.owner.name} (${config.owner.id})`,
        `Store: ${describeStore(config.store)}`,
        '',
        'Owner token (shown once; keep it safe):',
        `  ${ownerToken}`,
        '',
        `Start it:  quark start --home ${paths.home}`,
        `Log in:    quark login --url http://${config.listen.host}:${config.listen.port} --token ${ownerToken}`,
      ].join('\n'),
    );
  });

program
  .command('start')
  .description('run a runtime: serves the HTTP API until SIGINT/SIGTERM')
  .option('--home <dir>', 'runtime home (default: $QUARK_HOME or ~/.quark)')
  .option('--host <host>', 'listen address (overrides config.json)')
  .option('--port <port>', 'listen port (overrides config.json; 0 picks a free port)', (v) => Number.parseInt(v, 10))
  .option('--insecure', 'allow plain HTTP on a non-loopback address')
  .option('--init-if-missing', 'create the home first if it does not exist')
  .option('--log-level <level>', 'log level (overrides config.json)')
  .action(async (options: { home?: string; host?: string; port?: number; insecure?: boolean; initIfMissing?: boolean; logLevel?: string }) => {
    const home = options.home ?? defaultHome();
    let created: { token: string } | undefined;
    if (!homeExists(home) && options.initIfMissing) {
      created = { token: (await initHome({ home }, createSchemaRegistry())).ownerToken };
    }
    const runtime = await createRuntime({ home, ...(options.logLevel ? { logLevel: options.logLevel } : {}) });
    let url: string;
    let app: Awaited<ReturnType<typeof serve>>['app'];
    try {
      ({ app, url } = await serve(runtime, { ...(options.host ? { host: options.host } : {}), ...(options.port !== undefined ? { port: options.port } : {}), ...(options.insecure ? { insecure: true } : {}) }));
    } catch (error) {
      await runtime.close();
      throw error;
    }
    const banner = [
      `quark ${quarkVersion}: ${runtime.config.kind} runtime "${runtime.config.name}" (${runtime.config.id}) listening on ${url}`,
      `console: ${url}/ (sign in with an account token)`,
      `home: ${runtime.paths.home}`,
      ...runtime.warnings.map((w) => `warning: config.json#${w.path}: ${w.message}`),
    ];
    if (created) {
      banner.push('A new runtime home was created. Owner token (shown once; keep it safe):', `  ${created.token}`, `Log in: quark login --url ${url} --token ${created.token}`);
    } else {
      banner.push(`Log in: quark login --url ${url} --token <your token>`);
    }
    process.stderr.write(banner.join('\n') + '\n');
    runtime.logger.info({ url, home: runtime.paths.home }, 'runtime started');

    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      // a molecule node drains first (cluster.drainMs), then shuts down as any runtime
      const grace = runtime.config.limits.shutdownGraceMs + (runtime.config.queue ? (runtime.config.cluster?.drainMs ?? 0) : 0);
      runtime.logger.info({ signal, graceMs: grace }, 'shutting down: finishing work in flight');
      const force = setTimeout(() => {
        runtime.logger.warn({ graceMs: grace }, 'grace period over: stopping with work still in flight');
        process.exit(1);
      }, grace);
      force.unref();
      (async () => {
        // a molecule node drains first, its API still answering (reads, cancel, wait); then the API closes
        await runtime.drain();
        await app.close();
        await runtime.close();
        runtime.logger.info('runtime stopped');
        clearTimeout(force);
        // let pino flush before the process ends
        setImmediate(() => process.exit(0));
      })().catch((error: unknown) => {
        runtime.logger.error({ err: error }, 'shutting down failed');
        setImmediate(() => process.exit(1));
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });

// ---- the local account ---------------------------------------------------------------

/** A runtime URL as `login --url` takes it: http:// or https://, a host, no trailing slash. */
function runtimeUrl(given: string): string {
  const url = given.replace(/\/+$/, '');
  if (/^https?:\/\/[^/]/i.test(url) && URL.canParse(url)) return url;
  const example = `http://${url.replace(/^[a-z][a-z0-9+.-]*:\/*/i, '') || '127.0.0.1:7420'}`;
  throw quarkError('QUARK_ERR_CLI_INPUT_INVALID', `--url must be an http:// or https:// URL, such as ${example}; got "${given}"`, { problems: [{ path: '--url', message: 'must start with http:// or https://' }] });
}

program
  .command('login')
  .description('save the runtime URL and token of the local profile (checked against the runtime first)')
  .requiredOption('--url <url>', 'runtime URL, e.g. http://127.0.0.1:7420')
  .option('--token <token>', 'account token (or use --token-stdin)')
  .option('--token-stdin', 'read the token from standard input')
  .action(async (options: { url: string; token?: string; tokenStdin?: boolean }) => {
    const url = runtimeUrl(options.url);
    const token = options.tokenStdin ? readFileSync(0, 'utf8').trim() : options.token;
    if (!token) throw quarkError('QUARK_ERR_CLI_INPUT_INVALID', 'give --token <token> or --token-stdin');
    const profile = { url, token };
    const who = await createApiClient(profile).call<{ account: { name: string } }>('GET', '/whoami');
    const file = saveProfile(profile);
    emit({ profile: file, account: who.account }, () => `Logged in to ${profile.url} as ${who.account.name}; profile saved in ${file}`);
  });

program
  .command('logout')
  .description('forget the saved profile')
  .action(() => {
    const removed = removeProfile();
    emit({ removed, profile: profilePath() }, () => (removed ? `Removed ${profilePath()}` : 'Not logged in'));
  });

program
  .command('whoami')
  .description('show the profile\'s account and whether the runtime is associated with it')
  .action(async () => {
    const who = await client().call<{ account: { id: string; name: string; relation: string }; runtime: { id: string; name: string; kind: string }; associated: boolean }>('GET', '/whoami');
    emit(who, () =>
      block([
        ['account', `${who.account.name} (${who.account.id})`],
        ['relation', who.account.relation],
        ['runtime', `${who.runtime.name} (${who.runtime.id}, ${who.runtime.kind})`],
        ['associated', who.associated ? 'yes: Test Connection allowed' : 'no: Test Connection is refused for this account'],
      ]),
    );
  });

program
  .command('runtime')
  .description('show the runtime\'s identity, limits and whether you may run Test Connection on it')
  .action(async () => {
    const info = await client().call<Record<string, unknown>>('GET', '/runtime');
    emit(info, () => block(Object.entries(info)));
  });

const nodes = program.command('nodes').description('the nodes of the runtime: a molecule\'s every node, an atom\'s one');
nodes
  .command('list')
  .description('id, address, version, started, last heartbeat, running executions, draining')
  .action(async () => {
    const list = await client().call<Record<string, unknown>[]>('GET', '/nodes');
    emit(list, () => table(list, ['id', 'address', 'version', 'startedAt', 'heartbeatAt', 'running', 'draining']));
  });

// ---- accounts and tokens ------------------------------------------------------------

const accounts = program.command('accounts').description('accounts known to the runtime (the owner sees all, others only their own; only the owner adds)');
accounts
  .command('list')
  .action(async () => {
    const result = await client().call<{ accounts: Record<string, unknown>[] }>('GET', '/accounts');
    emit(result, () => table(result.accounts, ['id', 'name', 'relation', 'createdAt']));
  });
accounts
  .command('add <name>')
  .description('attach a tenant (cloud runtimes) or add a guest account (read-only, any kind)')
  .addOption(new Option('--relation <relation>', 'tenant or guest').choices(['tenant', 'guest']).makeOptionMandatory())
  .action(async (name: string, options: { relation: 'tenant' | 'guest' }) => {
    const account = await client().call<Record<string, unknown>>('POST', '/accounts', { name, relation: options.relation });
    emit(account, () => `Added ${options.relation} account ${name} (${String(account.id)}); create a token for it: quark tokens create <name> --account ${name}`);
  });

const tokens = program.command('tokens').description('account tokens');
tokens
  .command('list')
  .action(async () => {
    const result = await client().call<{ tokens: TokenView[] }>('GET', '/tokens');
    emit(result, () => table(result.tokens as unknown as Record<string, unknown>[], ['id', 'accountId', 'name', 'createdAt', 'revokedAt']));
  });
tokens
  .command('create <name>')
  .description('create a token (for another account: owner only); it is shown once')
  .option('--account <account>', 'account id or name (default: your own)')
  .action(async (name: string, options: { account?: string }) => {
    const created = await client().call<TokenView & { token: string }>('POST', '/tokens', { name, ...(options.account ? { account: options.account } : {}) });
    emit(created, () => `Token ${created.id} for account ${created.accountId} (shown once):\n  ${created.token}`);
  });
tokens
  .command('revoke <id>')
  .action(async (id: string) => {
    const revoked = await client().call<TokenView>('DELETE', `/tokens/${encodeURIComponent(id)}`);
    emit(revoked, () => `Revoked ${revoked.id}`);
  });

// ---- connectors ---------------------------------------------------------------------

const connectors = program.command('connectors').description('connector plugins loaded and quarantined');
connectors
  .command('list')
  .action(async () => {
    const result = await client().call<{ loaded: Record<string, unknown>[]; quarantined: { dir: string; id?: string; reason: { code: string; message: string; details?: { problems?: FieldProblem[] } } }[]; warnings?: FieldProblem[] }>('GET', '/connectors');
    emit(result, () => {
      const lines = [table(result.loaded, ['id', 'name', 'version', 'source', 'testConnection'])];
      for (const w of result.warnings ?? []) lines.push(`warning: config.json#${w.path}: ${w.message}`);
      if (result.quarantined.length > 0) {
        lines.push('', 'Quarantined:');
        for (const q of result.quarantined) {
          lines.push(`  ${q.id ?? '(unknown id)'}  ${q.dir}`, `    ${q.reason.code}: ${q.reason.message}`);
          for (const p of q.reason.details?.problems ?? []) lines.push(`    - ${p.file ?? ''}${p.path ? `#${p.path}` : ''}: ${p.message}`);
        }
      }
      return lines.join('\n');
    });
  });
connectors
  .command('show <id>')
  .action(async (id: string) => {
    const detail = await client().call<Record<string, unknown>>('GET', `/connectors/${encodeURIComponent(id)}`);
    emit(detail, () => JSON.stringify(detail, null, 2));
  });

// ---- connections --------------------------------------------------------------------

// ---- connector authoring (offline) -------------------------------------------------

/** The loader's problems that the spec rules did not already report at the same place. */
function newProblems(known: readonly SpecProblem[], found: readonly SpecProblem[]): SpecProblem[] {
  const at = (p: SpecProblem) => `${resolve(p.file)}#${p.path}`;
  const seen = new Set(known.map(at));
  return found.filter((p) => !seen.has(at(p)));
}

const connectorKit = program.command('connector').description('write and check connector plugins; offline, no runtime needed (docs/connectors.md)');
connectorKit
  .command('new <id>')
  .description('create a connector folder <dir>/<id> that passes `quark connector validate` and its own test')
  .option('--dir <folder>', 'the folder to create it in', '.')
  .option('--name <name>', 'display name (default: the id in title case)')
  .action((id: string, options: { dir: string; name?: string }) => {
    const made = scaffoldConnector({ id, parent: options.dir, ...(options.name !== undefined ? { name: options.name } : {}) });
    emit(made, () =>
      [`created ${made.dir}`, ...made.files.map((f) => `  ${f}`), '', 'next:', `  quark connector validate ${made.dir}`, `  cd ${made.dir} && npm install && npm link quark && npm test`].join('\n'),
    );
  });
connectorKit
  .command('validate <dir>')
  .description('check a connector folder against the spec rules, and import its module in a worker as a runtime does; exit 0 ok, 1 problems, 2 cannot run')
  .option('--previous <dir>', "the previous version's folder: saved connections of it must still validate")
  .action(async (dir: string, options: { previous?: string }) => {
    let linted;
    try {
      linted = lintConnector(dir, options.previous !== undefined ? { previous: options.previous } : {});
    } catch (error) {
      if (error instanceof CannotLintError) throw quarkError('QUARK_ERR_CLI_INPUT_INVALID', error.message);
      throw error;
    }
    linted.problems.push(...newProblems(linted.problems, await probeConnectorFolder(dir)));
    const ok = linted.problems.length === 0;
    emit({ ok, ...linted }, () =>
      ok
        ? `${linted.id ?? dir}${linted.version ? ` ${linted.version}` : ''}: no problems`
        : `${linted.id ?? dir}: ${linted.problems.length} problem${linted.problems.length === 1 ? '' : 's'}\n${formatProblems(linted.problems)}`,
    );
    process.exitCode = ok ? exitCodes.ok : exitCodes.failed;
  });

const connections = program.command('connections').description('saved connections of your account');
connections
  .command('list')
  .action(async () => {
    const result = await client().call<{ connections: ConnectionView[] }>('GET', '/connections');
    emit(result, () => table(result.connections as unknown as Record<string, unknown>[], ['id', 'name', 'connector', 'revision', 'updatedAt']));
  });
connections
  .command('show <connection>')
  .description('show a connection (id or name); secret fields show only whether they are set')
  .action(async (ref: string) => {
    const c = await client().call<ConnectionView>('GET', `/connections/${encodeURIComponent(ref)}`);
    emit(c, () => showConnection(c));
  });
connections
  .command('create <name>')
  .requiredOption('--connector <id>', 'connector id')
  .option('--file <file>', 'configuration as a JSON file (- for stdin)')
  .option(...setOption, parseSet)
  .option(...setJsonOption, parseSetJson)
  .action(async (name: string, options: ConfigOptions & { connector: string }) => {
    const api = client();
    const config = await configFrom(options, () => connectionSchemaOf(api, options.connector));
    const c = await api.call<ConnectionView>('POST', '/connections', { name, connector: options.connector, config });
    emit(c, () => `Created connection ${c.name} (${c.id})\n${showConnection(c)}`);
  });
connections
  .command('update <connection>')
  .description('replace a connection\'s configuration; secret fields left out keep their value, --clear removes one')
  .option('--name <name>', 'rename')
  .option('--file <file>', 'configuration as a JSON file (- for stdin)')
  .option(...setOption, parseSet)
  .option(...setJsonOption, parseSetJson)
  .option('--clear <key>', 'clear a secret field (repeatable)', collect)
  .option('--merge', 'start from the current non-secret fields instead of replacing them')
  .action(async (ref: string, options: ConfigOptions & { name?: string; merge?: boolean }) => {
    const api = client();
    const path = `/connections/${encodeURIComponent(ref)}`;
    const current = options.merge || options.set ? await api.call<ConnectionView>('GET', path) : undefined;
    const config = await configFrom(options, () => connectionSchemaOf(api, current!.connector));
    const base = options.merge ? current!.config : {};
    const c = await api.call<ConnectionView>('PUT', path, { ...(options.name ? { name: options.name } : {}), config: { ...base, ...config } });
    emit(c, () => `Updated connection ${c.name} (revision ${c.revision})\n${showConnection(c)}`);
  });
connections
  .command('delete <connection>')
  .action(async (ref: string) => {
    await client().call('DELETE', `/connections/${encodeURIComponent(ref)}`);
    emit({ deleted: ref }, () => `Deleted ${ref}`);
  });

// ---- Test Connection ------------------------------------------------------------------

type TestOptions = ConfigOptions & { connector?: string };

/** The request body of a Test Connection; reads the saved connection (and the schema for --set) when changes are given. */
async function testRequest(api: ApiClient, ref: string | undefined, options: TestOptions): Promise<Record<string, unknown>> {
  if (ref === undefined) return { connector: options.connector, config: await configFrom(options, () => connectionSchemaOf(api, options.connector!)) };
  if (!hasConfig(options)) return {};
  const current = await api.call<ConnectionView>('GET', `/connections/${encodeURIComponent(ref)}`);
  return { config: { ...current.config, ...(await configFrom(options, () => connectionSchemaOf(api, current.connector))) } };
}

program
  .command('test-connection [connection]')
  .description('run Test Connection on a saved connection, or on an unsaved configuration with --connector and --file/--set/--set-json')
  .option('--connector <id>', 'connector of an unsaved configuration')
  .option('--file <file>', 'configuration as a JSON file (- for stdin); with a saved connection, tested over it')
  .option(...setOption, parseSet)
  .option(...setJsonOption, parseSetJson)
  .action(async (ref: string | undefined, options: TestOptions) => {
    if (ref === undefined && (!options.connector || !hasConfig(options))) throw quarkError('QUARK_ERR_CLI_INPUT_INVALID', 'give a saved connection, or --connector with --file, --set or --set-json');
    const api = client();
    const path = ref === undefined ? '/test-connection' : `/connections/${encodeURIComponent(ref)}/test`;
    const reads = (ref !== undefined && hasConfig(options)) || options.set !== undefined;
    if (reads && !(await api.call<{ associated: boolean }>('GET', '/whoami')).associated) {
      // The container rule comes first, as in the API: nothing is read; the runtime gives the refusal.
      await api.call('POST', path, ref === undefined ? { connector: options.connector, config: {} } : {});
    }
    const result = await api.call<TestConnectionResult>('POST', path, await testRequest(api, ref, options));
    emit(result, () => showTestResult(result));
    process.exitCode = result.status === 'ok' ? exitCodes.ok : result.status === 'warning' ? exitCodes.warning : exitCodes.failed;
  });

// ---- processes (cli/processes.ts) -------------------------------------------------------

registerProcessCommands(program, { client, emit, out, globals, parseJsonFile, parseSet, collect });
registerOperationCommands(program, { client, emit, out, globals, parseJsonFile, parseSet, parseSetJson, collect });

// ---- errors -------------------------------------------------------------------------

/** Where a problem is: its file (and pointer into it), or its pointer. */
function problemPlace(p: FieldProblem): string {
  if (p.file) return p.path ? `${p.file} ${p.path}` : p.file;
  return p.path || '/';
}

function report(error: unknown): never {
  if (error instanceof QuarkError) {
    const status = (error as ClientError).httpStatus ?? error.status;
    if (globals().json) {
      process.stderr.write(JSON.stringify({ error: error.toJSON() }, null, 2) + '\n');
    } else {
      const problems = error.details?.problems ?? [];
      process.stderr.write(`error ${error.code}: ${error.message}\n` + problems.map((p) => `  - ${problemPlace(p)}: ${p.message}\n`).join(''));
    }
    process.exit(exitCodeFor(error.code, status));
  }
  process.stderr.write(`error: ${messageOf(error)}\n`);
  process.exit(exitCodes.failed);
}

/** What still escapes every owner: said on standard error, and the process exits 1. */
function escaped(kind: string) {
  return (error: unknown) => {
    const stack = error instanceof Error && error.stack ? error.stack : messageOf(error);
    process.stderr.write(`quark: ${kind}, exiting: ${stack}\n`);
    process.exit(exitCodes.failed);
  };
}
process.on('uncaughtException', escaped('uncaught exception'));
process.on('unhandledRejection', escaped('unhandled promise rejection'));

try {
  await program.parseAsync(process.argv);
} catch (error) {
  report(error);
}
