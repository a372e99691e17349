/**
 * A real authenticating HTTP proxy for the proxy tests: Debian's tinyproxy, run in the
 * foreground with a config file of its own on a loopback port. It answers 407 to a
 * CONNECT without credentials and 401 to one with wrong credentials (which proxy-chain
 * does not do by itself). `.ci/run` installs it; without it the tests that need it are
 * skipped and say so.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { tempDir } from './quark.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** `{}` when tinyproxy can run here, else `{ skip }` with the reason (for tap's options). */
export const tinyproxyAvailable: { skip?: string } =
  spawnSync('tinyproxy', ['-v'], { stdio: 'ignore' }).status === 0 ? {} : { skip: 'SKIPPED: tinyproxy is not installed (apt-get install -y tinyproxy)' };

export interface Tinyproxy {
  host: string;
  port: number;
  /** Its log so far (connections and refusals). */
  log(): string;
}

/** A free loopback port, as the OS picks it (tinyproxy refuses Port 0). */
async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** Starts tinyproxy with Basic authentication for one user; resolves once it accepts connections. */
export async function startTinyproxy(t: Teardown, credentials: { user: string; password: string }): Promise<Tinyproxy> {
  const dir = tempDir(t, 'quark-tinyproxy-');
  const port = await freePort();
  const config = join(dir, 'tinyproxy.conf');
  // no Allow and no ConnectPort lines: any client on loopback, CONNECT to any port
  writeFileSync(config, [`Port ${port}`, 'Listen 127.0.0.1', 'Timeout 60', 'MaxClients 50', `BasicAuth ${credentials.user} ${credentials.password}`, 'LogLevel Info', ''].join('\n'));
  const child = spawn('tinyproxy', ['-d', '-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit');
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk;
      if (output.includes('Accepting connections')) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`tinyproxy exited with ${code} before accepting connections:\n${output}`)));
  });
  return { host: '127.0.0.1', port, log: () => output };
}
