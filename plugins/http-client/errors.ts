/**
 * Tells network failures apart, however undici reports them: a socket error code
 * (ENOTFOUND, ECONNREFUSED…), a TLS verification code, an undici timeout, a proxy's
 * answer to CONNECT, or the caller's abort.
 */

export type FailureKind = 'dns' | 'refused' | 'tls' | 'timeout' | 'proxy-auth' | 'proxy-refused' | 'proxy-unreachable' | 'aborted' | 'other';

export interface Failure {
  kind: FailureKind;
  /** The network or TLS error code, or a connector code (Timeout, ProxyAuthenticationRequired). */
  code: string;
  /** For timeouts: whether the connection itself timed out (else the response did). */
  connectPhase?: boolean;
  /** For timeouts: no answer at all within the connection's timeout, phase unknown (a silent proxy tunnel). */
  noAnswer?: boolean;
  status?: number;
  detail: string;
}

const dnsCodes = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_FAIL']);
const refusedCodes = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);
const timeoutCodes = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

interface ErrorLike {
  name?: string;
  code?: string;
  message?: string;
  cause?: unknown;
  errors?: unknown[];
}

function chain(error: unknown): ErrorLike[] {
  const seen: ErrorLike[] = [];
  const queue: unknown[] = [error];
  while (queue.length > 0 && seen.length < 12) {
    const current = queue.shift() as ErrorLike | undefined;
    if (!current || typeof current !== 'object' || seen.includes(current)) continue;
    seen.push(current);
    if (current.cause !== undefined) queue.push(current.cause);
    // AggregateError from happy-eyeballs connects: each address's error
    if (Array.isArray(current.errors)) queue.push(...current.errors);
  }
  return seen;
}

/** True for a TLS verification or handshake error code. */
export function isTlsCode(code: string): boolean {
  return /CERT|SELF_SIGNED|UNABLE_TO_|ERR_TLS_|ERR_SSL_|^EPROTO$|HOSTNAME_MISMATCH/.test(code);
}

export function classify(error: unknown, context: { viaProxy: boolean; signal: AbortSignal }): Failure {
  const errors = chain(error);
  const top = errors[0] ?? {};
  const detail = top.message ?? String(error);

  for (const e of errors) {
    const message = e.message ?? '';
    if (/Proxy Authentication Required \(407\)/.test(message)) return { kind: 'proxy-auth', code: 'ProxyAuthenticationRequired', status: 407, detail: message };
    const tunnel = /Proxy response \((\d{3})\)/.exec(message);
    if (tunnel) {
      const status = Number(tunnel[1]);
      // 407 when credentials are missing; some proxies (tinyproxy) answer 401 to wrong ones
      if (status === 407 || status === 401) return { kind: 'proxy-auth', code: 'ProxyAuthenticationRequired', status, detail: message };
      return { kind: 'proxy-refused', code: `ProxyHttp${status}`, status, detail: message };
    }
  }
  for (const e of errors) {
    const code = e.code ?? '';
    if (code === 'QUARK_HTTP_NO_ANSWER') return { kind: 'timeout', code: 'Timeout', noAnswer: true, detail: e.message ?? code };
    if (timeoutCodes.has(code)) return { kind: 'timeout', code: 'Timeout', connectPhase: code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT', detail: e.message ?? code };
    if (isTlsCode(code)) return { kind: 'tls', code, detail: e.message ?? code };
    if (dnsCodes.has(code)) return { kind: context.viaProxy ? 'proxy-unreachable' : 'dns', code, detail: e.message ?? code };
    if (refusedCodes.has(code)) return { kind: context.viaProxy ? 'proxy-unreachable' : 'refused', code, detail: e.message ?? code };
  }
  if (context.signal.aborted) {
    const reason = context.signal.reason as ErrorLike | undefined;
    const timedOut = reason?.name === 'TimeoutError' || /time/i.test(reason?.message ?? '');
    return timedOut ? { kind: 'timeout', code: 'Timeout', detail: reason?.message ?? 'timed out' } : { kind: 'aborted', code: 'Aborted', detail: reason?.message ?? 'aborted' };
  }
  return { kind: 'other', code: top.code ?? top.name ?? 'Error', detail };
}

/** What the words about a proxy failure need to know. */
export interface ProxyScene {
  /** The runtime's proxy URL. */
  proxy: string | undefined;
  /** host:port the tunnel was for. */
  target: string;
  /** Whether the connection has an "HTTP proxy user". */
  credentials: boolean;
}

/**
 * A failure of the runtime's HTTP proxy in words that name the proxy and what to change
 * (the fields by their titles), or undefined when the proxy is not the one that failed.
 */
export function proxyProblem(failure: Failure, scene: ProxyScene): string | undefined {
  const { proxy, target } = scene;
  switch (failure.kind) {
    case 'proxy-auth':
      return scene.credentials
        ? `the runtime's HTTP proxy ${proxy} refused the credentials (HTTP ${failure.status}): check "HTTP proxy user" and "HTTP proxy password"`
        : `the runtime's HTTP proxy ${proxy} requires credentials (HTTP ${failure.status}): enter "HTTP proxy user" and "HTTP proxy password"`;
    case 'proxy-refused':
      return `the runtime's HTTP proxy ${proxy} could not or would not connect to ${target} (HTTP ${failure.status}): check the base URL's host, or ask the proxy's administrator to allow it`;
    case 'proxy-unreachable':
      return `cannot connect to the runtime's HTTP proxy ${proxy} (${failure.code}): check the proxy host and port in the runtime settings`;
    default:
      return undefined;
  }
}
