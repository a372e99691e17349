import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { isIP } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { quarkError } from '../core/errors.js';
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
  await app.listen({ host, port });
  const address = app.server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return { app, url: `${https ? 'https' : 'http'}://${shownHost}:${actualPort}` };
}
