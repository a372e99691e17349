import { createHash } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import { Agent, ProxyAgent, type Dispatcher } from 'undici';
import type { RuntimeSettings } from 'quark/sdk';
import { timeoutOf, type HttpConfig } from './config.js';

export function proxyUrl(runtime: RuntimeSettings): string | undefined {
  return runtime.proxy ? `http://${runtime.proxy.host}:${runtime.proxy.port}` : undefined;
}

/**
 * The dispatcher of a connection: undici's ProxyAgent (a CONNECT tunnel, with the
 * connection's proxy credentials) when the runtime has a proxy, else a plain Agent. The
 * connect timeout is the connection's timeout, and its CA certificate is trusted besides
 * the system's; header and body timeouts are per request.
 */
export function createDispatcher(config: HttpConfig, runtime: RuntimeSettings, options: { connections?: number } = {}): Dispatcher {
  const timeout = timeoutOf(config);
  const uri = proxyUrl(runtime);
  const connections = options.connections ?? 16;
  // an extra CA is added to Node's roots, not put in their place
  const ca = config.caCertificate ? { ca: [...rootCertificates, config.caCertificate] } : {};
  if (uri) {
    const token = config.proxyUser ? `Basic ${Buffer.from(`${config.proxyUser}:${config.proxyPassword ?? ''}`).toString('base64')}` : undefined;
    return new ProxyAgent({ uri, ...(token ? { token } : {}), connections, requestTls: { timeout, ...ca }, proxyTls: { timeout } });
  }
  return new Agent({ connections, connect: { timeout, ...ca } });
}

const maxDispatchers = 16;

/**
 * One dispatcher per connection configuration per worker, reused across calls
 * (keep-alive sockets). Keyed by a hash of the configuration and the runtime settings, so
 * a changed secret or proxy gets a new one; the oldest is closed beyond 16.
 */
export function createDispatcherCache() {
  const entries = new Map<string, Dispatcher>();
  return {
    get(config: HttpConfig, runtime: RuntimeSettings): Dispatcher {
      const id = createHash('sha256').update(JSON.stringify([config, runtime])).digest('hex');
      let dispatcher = entries.get(id);
      if (dispatcher) {
        entries.delete(id);
        entries.set(id, dispatcher);
        return dispatcher;
      }
      dispatcher = createDispatcher(config, runtime);
      entries.set(id, dispatcher);
      if (entries.size > maxDispatchers) {
        const [oldestId, oldest] = entries.entries().next().value as [string, Dispatcher];
        entries.delete(oldestId);
        void oldest.close().catch(() => undefined);
      }
      return dispatcher;
    },
  };
}

/**
 * undici's answer, or a rejection when the signal aborts or `ms` pass without one. undici
 * 7 leaves a request pending for ever, deaf to its signal and timeouts, when a proxy
 * closes the socket instead of answering CONNECT (proxy-chain does that for a host it
 * cannot reach): this guard bounds every request. A late answer is discarded.
 */
export function guarded<T extends { body?: { destroy(): unknown } }>(promise: Promise<T>, signal: AbortSignal, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      fn();
    };
    const onAbort = () => settle(() => reject(signal.reason));
    const timer = setTimeout(() => settle(() => reject(Object.assign(new Error(`no answer within ${ms} ms`), { code: 'QUARK_HTTP_NO_ANSWER' }))), ms);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        if (settled) value.body?.destroy();
        else settle(() => resolve(value));
      },
      (error: unknown) => settle(() => reject(error)),
    );
  });
}
