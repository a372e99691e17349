import t from 'tap';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, cliPath, fixturePlugins, initHome, startRuntime, tempDir } from '../helpers/quark.js';

/** `quark start` expected to be refused: its exit code and output, or `listening: true` (then stopped) if it started. */
function startExpectingRefusal(args: string[]): Promise<{ code: number | null; stderr: string; listening: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, 'start', ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME } as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let listening = false;
    child.stdout.resume();
    child.stderr.on('data', (d) => {
      stderr += d;
      // the banner, not the refusal (which names the holder's address)
      if (!listening && /runtime "[^"]*" \(rt_[^)]*\) listening on http/.test(stderr)) {
        listening = true;
        child.kill('SIGTERM');
      }
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr, listening }));
  });
}

/** Every file under `dir` (recursively) with its permission bits. */
function modes(dir: string, prefix = ''): [string, number][] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry): [string, number][] => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return modes(path, `${prefix}${entry.name}/`);
    return [[`${prefix}${entry.name}`, statSync(path).mode & 0o777]];
  });
}

t.test('one process per home: a second start and an init are refused naming the running process; a kill -9 leaves no stale lock', async (t) => {
  const { home, ownerToken } = await initHome(t);
  const first = await startRuntime(t, home);
  const pid = first.child.pid!;
  // scratch files of a running runtime: a second start used to empty work/ under it
  const scratch = join(home, 'work', 'in-use');
  writeFileSync(scratch, 'busy');

  const second = await startExpectingRefusal(['--home', home, '--port', '0']);
  t.notOk(second.listening, 'the second start does not serve');
  t.equal(second.code, 8, 'a conflict');
  t.match(second.stderr, /error QUARK_ERR_HOME_LOCKED: cannot start: the runtime home .* is in use by quark process (\d+) \(listening on (http\S+)\)/);
  t.match(second.stderr, new RegExp(`quark process ${pid} \\(listening on ${first.url.replace(/[.]/g, '\\.')}\\)`), 'it names the pid and address of the holder');
  t.notMatch(second.stderr, /runtime "[^"]*" \(rt_/, 'the second printed no banner: it never listened');
  t.ok(existsSync(scratch), 'the running runtime\'s work files are untouched');
  t.equal((await first.api('GET', '/api/v1/whoami', ownerToken)).status, 200, 'the first runtime still serves');

  const init = await cli(['init', '--home', home]);
  t.equal(init.code, 8);
  t.match(init.stderr, new RegExp(`QUARK_ERR_HOME_LOCKED: cannot init: .* quark process ${pid}`));

  t.equal(await first.stop('SIGKILL'), null, 'killed with SIGKILL');
  const third = await startRuntime(t, home);
  t.equal((await third.api('GET', '/api/v1/whoami', ownerToken)).status, 200, 'the next start takes the home at once');
  const holder = JSON.parse(readFileSync(join(home, 'runtime.pid'), 'utf8'));
  t.equal(holder.pid, third.child.pid, 'runtime.pid names the new holder');
  t.equal(holder.url, third.url);
  t.equal(await third.stop(), 0);
  t.notOk(existsSync(join(home, 'runtime.pid')), 'a clean stop removes the holder file');
});

t.test('every file of the home is owner-only (0600): the store with its -wal and -shm, the lock, config.json, master.key', async (t) => {
  const { home, ownerToken } = await initHome(t);
  for (const [file, mode] of modes(home)) t.equal(mode, 0o600, `after init: ${file} is ${mode.toString(8)}`);
  // a home made by an older version: its store was world-readable
  chmodSync(join(home, 'quark.db'), 0o644);
  const rt = await startRuntime(t, home);
  t.equal((await rt.api('POST', '/api/v1/tokens', ownerToken, { name: 'ci' })).status, 201, 'something written, so the -wal exists');
  const running = modes(home);
  const names = running.map(([file]) => file);
  for (const file of ['config.json', 'master.key', 'quark.db', 'quark.db-wal', 'quark.db-shm', 'lock.db', 'runtime.pid']) t.ok(names.includes(file), `${file} exists while running`);
  for (const [file, mode] of running) t.equal(mode, 0o600, `while running: ${file} is ${mode.toString(8)}`);
  t.equal(statSync(home).mode & 0o777, 0o700);
});

t.test('start: the banner names the console; an address in use, a missing plugin path and no deprecation noise', async (t) => {
  const missing = join(tempDir(t), 'no-such-plugins');
  const { home, ownerToken } = await initHome(t, { config: { plugins: { paths: [join(fixturePlugins, 'process-kit'), missing] } } });
  const rt = await startRuntime(t, home);
  await new Promise((r) => setImmediate(r));
  const output = rt.output();
  t.match(output, new RegExp(`console: ${rt.url.replace(/[.]/g, '\\.')}/ `), 'the console URL');
  t.match(output, new RegExp(`warning: config.json#/plugins/paths/1: ${missing} does not exist`), 'the missing plugin path, in the banner');
  t.notMatch(output, /Deprecation/i, 'no FastifyDeprecation warning');
  const list = await cli(['connectors', 'list'], rt.as(ownerToken));
  t.equal(list.code, 0, list.stderr);
  t.match(list.stdout, /process-kit/);
  t.match(list.stdout, new RegExp(`warning: config.json#/plugins/paths/1: ${missing} does not exist`), 'and in connectors list');

  const port = new URL(rt.url).port;
  const other = await initHome(t);
  const busy = await startExpectingRefusal(['--home', other.home, '--port', port]);
  t.equal(busy.code, 8, busy.stderr);
  t.match(busy.stderr, new RegExp(`error QUARK_ERR_CONFIG_ADDRESS_IN_USE: another process listens on 127\\.0\\.0\\.1:${port}; stop it, or use --port`));
  t.match(busy.stderr, /- \/listen\/port: /);
  const after = await startRuntime(t, other.home);
  t.equal((await after.api('GET', '/api/v1/whoami', other.ownerToken)).status, 200, 'the refused start left the home free');
});
