import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { isIP } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { quarkError, messageOf } from '../core/errors.js';
import type { Runtime } from '../index.js';
import { buildApp } from './app.js';

export interface ServeOptions {
  host?: string;
  port?: number;
  /** Allow plain HTTP on a non-loopback address. */
  insecure?: boolean;
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '[::1]';
}

/**
 * Serves the runtime's API. Loopback by default; any other address needs TLS (from the
 * config) or the explicit insecure flag.
 */
export async function serve(runtime: Runtime, options: ServeOptions = {}): Promise<{ app: FastifyInstance; url: string }> {
  const { listen } = runtime.config;
  const host = options.host ?? listen.host;
  const port = options.port ?? listen.port;
  const insecure = options.insecure ?? listen.insecure ?? false;
  let https: { cert: Buffer; key: Buffer } | undefined;
  if (listen.tls) {
    const file = (p: string) => readFileSync(isAbsolute(p) ? p : resolve(runtime.paths.home, p));
    https = { cert: file(listen.tls.cert), key: file(listen.tls.key) };
  } else if (!isLoopback(host) && !insecure) {
    throw quarkError(
      'QUARK_ERR_CONFIG_INSECURE_LISTEN',
      `refusing to listen on ${host} without TLS: set listen.tls (cert and key) in config.json, or pass --insecure to accept tokens in clear text`,
      { problems: [{ path: '/listen/host', message: 'is not a loopback address and listen.tls is not set' }] },
    );
  }
  const app = buildApp(runtime, https ? { https } : {});
  await listenOn(app, host, port, options.port !== undefined);
  const address = app.server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const url = `${https ? 'https' : 'http'}://${shownHost}:${actualPort}`;
  runtime.announce(url);
  return { app, url };
}

/** app.listen, with an address in use said as such (and which setting to change). */
async function listenOn(app: FastifyInstance, host: string, port: number, portFromOption: boolean): Promise<void> {
  try {
    await app.listen({ host, port });
  } catch (error) {
    await app.close();
    if ((error as { code?: unknown }).code !== 'EADDRINUSE') throw error;
    throw quarkError(
      'QUARK_ERR_CONFIG_ADDRESS_IN_USE',
      `another process listens on ${host}:${port}; stop it, or use --port <port> (0 picks a free one)${portFromOption ? '' : ' or change listen.port in config.json'}`,
      { problems: [{ path: '/listen/port', message: `${port} is in use on ${host}: ${messageOf(error)}` }] },
      error,
    );
  }
}
