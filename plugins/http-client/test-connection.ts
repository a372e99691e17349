import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { request } from 'undici';
import { check, type Check, type TestContext, type TestReport } from 'quark/sdk';
import { authHeaders, buildUrl, displayUrl, targetOf, timeoutOf, type HttpConfig } from './config.js';
import { classify, proxyProblem, type Failure } from './errors.js';
import { createDispatcher, guarded, proxyUrl } from './transport.js';

const titles = {
  dns: 'Host name',
  proxy: 'HTTP proxy',
  connection: 'Connection',
  tls: 'TLS',
  authentication: 'Authentication',
} as const;
type CheckId = keyof typeof titles;

const make = (id: CheckId, status: Check['status'], message: string, code?: string): Check =>
  check[status](id, message, { title: titles[id], ...(code !== undefined ? { code } : {}) });
const skipped = (ids: CheckId[], why: string) => ids.map((id) => make(id, 'skipped', `not checked: ${why}`));

/** Why a certificate is not trusted, in words, by OpenSSL/Node code. */
function tlsReason(code: string, detail: string): string {
  switch (code) {
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      return 'the server presents a self-signed certificate';
    case 'SELF_SIGNED_CERT_IN_CHAIN':
      return 'the certificate chain ends in a self-signed CA that this runtime does not trust';
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
      return 'the certificate is issued by a CA that this runtime does not know (or the server omits the intermediate certificates)';
    case 'CERT_HAS_EXPIRED':
      return 'the certificate has expired';
    case 'CERT_NOT_YET_VALID':
      return 'the certificate is not valid yet (check this machine\'s clock)';
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return 'the certificate is for another host name';
    default:
      return detail;
  }
}

async function resolves(host: string, signal: AbortSignal): Promise<{ ok: true; address: string } | { ok: false; code: string }> {
  const bare = host.replace(/^\[|\]$/g, '');
  if (isIP(bare)) return { ok: true, address: bare };
  const aborted = new Promise<never>((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
  try {
    const { address } = await Promise.race([lookup(bare), aborted]);
    return { ok: true, address };
  } catch (error) {
    if (signal.aborted) return { ok: false, code: 'Timeout' };
    return { ok: false, code: (error as { code?: string }).code ?? 'ENOTFOUND' };
  }
}

/** The checks after a network failure of the probe request: the failed one and the skipped rest. */
function networkChecks(failure: Failure, url: URL, config: HttpConfig, proxy: string | undefined, timeout: number, atTimeLimit: boolean): Check[] {
  const target = targetOf(url);
  const https = url.protocol === 'https:';
  const later: CheckId[] = https ? ['tls', 'authentication'] : ['authentication'];
  const viaProxy = proxy ? [make('proxy', 'ok', `connected through ${proxy}`)] : [];
  const proxyWords = proxyProblem(failure, { proxy, target, credentials: Boolean(config.proxyUser) });
  if (proxyWords !== undefined) {
    const why = failure.kind === 'proxy-unreachable' ? 'the proxy is unreachable' : 'the proxy refused the connection';
    return [make('proxy', 'failed', proxyWords, failure.code), ...skipped(['connection', ...later], why)];
  }
  switch (failure.kind) {
    case 'dns':
      return [make('dns', 'failed', `the host name "${url.hostname}" does not resolve (${failure.code}): check the base URL's host and this machine's DNS`, failure.code), ...skipped(['connection', ...later], 'the host name does not resolve')];
    case 'refused':
      return [...viaProxy, make('connection', 'failed', `cannot connect to ${target} (${failure.code}): check the base URL's port, that the server is running, and firewalls`, failure.code), ...skipped(later, 'no connection')];
    case 'timeout':
      if (proxy && failure.noAnswer) {
        return [make('proxy', 'failed', `no answer through the runtime's HTTP proxy ${proxy} from ${target} within ${timeout} ms (timeout): the proxy cannot reach the host (check the base URL's host and port) or is too slow`, 'Timeout'), ...skipped(['connection', ...later], 'no tunnel through the proxy')];
      }
      return failure.connectPhase || failure.noAnswer
        ? [...viaProxy, make('connection', 'failed', `no connection to ${target} within ${atTimeLimit ? 'the time limit' : `${timeout} ms`} (timeout): a firewall drops the traffic, or the host is down`, 'Timeout'), ...skipped(later, 'no connection')]
        : [...viaProxy, make('connection', 'failed', `${target} accepted the connection but did not answer GET ${displayUrl(url)} within ${atTimeLimit ? 'the time limit' : `${timeout} ms`} (timeout): the server is overloaded or the path hangs; raise "Timeout" or choose another Test Connection path`, 'Timeout'), ...skipped(later, 'no answer')];
    case 'tls':
      return [...viaProxy, make('connection', 'ok', `connected to ${target}`), make('tls', 'failed', `TLS with ${url.hostname} failed: ${tlsReason(failure.code, failure.detail)} (${failure.code}): use a certificate from a trusted CA on the server, or paste its CA (or the self-signed certificate) into "Trusted CA certificate"`, failure.code), ...skipped(['authentication'], 'no TLS session')];
    default:
      return [...viaProxy, make('connection', 'failed', `GET ${displayUrl(url)} failed (${failure.code}): ${failure.detail}`, failure.code), ...skipped(later, 'the request failed')];
  }
}

const refusedMessages: Record<HttpConfig['authKind'], string> = {
  none: 'the server requires authentication: choose an authentication kind and enter the credentials',
  basic: 'the server refused the user name or password: check "User name" and "Password"',
  bearer: 'the server refused the bearer token (wrong, expired or revoked): enter "Bearer token" again',
  apiKey: 'the server refused the API key: check "API key" and "API key header"',
};

function authenticationCheck(config: HttpConfig, status: number, location: string | undefined, url: URL, problem: string | undefined): Check {
  const where = `GET ${displayUrl(url)}`;
  if (status === 401) return make('authentication', 'failed', `${where} answered 401 Unauthorized: ${refusedMessages[config.authKind]}`, 'Unauthorized');
  if (status === 403) return make('authentication', 'failed', `${where} answered 403 Forbidden: the credentials were refused for this path; grant them access, or choose another "Test Connection path"`, 'Forbidden');
  if (problem) return make('authentication', 'failed', `the connection is incomplete: ${problem}`, 'ConnectionIncomplete');
  if (status === 404) return make('authentication', 'warning', `${where} answered 404 Not Found, so the credentials could not be checked: set "Test Connection path" to a path that exists`, 'ProbeNotFound');
  if (status >= 500) return make('authentication', 'warning', `${where} answered ${status}: the server has a problem; the credentials could not be checked`, `HTTP${status}`);
  if (status >= 300 && status < 400) return make('authentication', 'warning', `${where} answered ${status}, a redirect${location ? ` to ${location}` : ''} (often to a login page), so the credentials could not be checked: set "Test Connection path" to a path that answers directly`, 'Redirect');
  if (status >= 400) return make('authentication', 'warning', `${where} answered ${status}: the credentials could not be checked; choose another "Test Connection path"`, `HTTP${status}`);
  return make('authentication', 'ok', config.authKind === 'none' ? `${where} answered ${status} without credentials` : `the server accepted the credentials (${where} answered ${status})`);
}

/**
 * Test Connection: resolves the host (unless a proxy does), then GETs base URL + test
 * path with the credentials through a fresh dispatcher: the connection, TLS and the
 * answer's status tell the checks apart.
 */
export async function testConnection({ config, runtime, signal }: TestContext<HttpConfig>): Promise<TestReport> {
  const proxy = proxyUrl(runtime);
  const timeout = timeoutOf(config);
  let url: URL;
  try {
    url = buildUrl(config.baseUrl, config.testPath ?? '/');
  } catch (error) {
    return { checks: [make('connection', 'failed', `the base URL and "Test Connection path" do not make a URL: ${(error as Error).message}`, 'InvalidUrl')] };
  }
  const checks: Check[] = [];
  const later: CheckId[] = url.protocol === 'https:' ? ['connection', 'tls', 'authentication'] : ['connection', 'authentication'];

  if (!proxy) {
    const dns = await resolves(url.hostname, signal);
    if (!dns.ok) {
      if (dns.code === 'Timeout') return { checks: [make('dns', 'failed', `the host name "${url.hostname}" did not resolve within the time limit (timeout): check this machine's DNS`, 'Timeout'), ...skipped(later, 'the host name did not resolve')] };
      return { checks: [make('dns', 'failed', `the host name "${url.hostname}" does not resolve (${dns.code}): check the base URL's host and this machine's DNS`, dns.code), ...skipped(later, 'the host name does not resolve')] };
    }
    checks.push(make('dns', 'ok', isIP(url.hostname.replace(/^\[|\]$/g, '')) ? `${url.hostname} is an IP address` : `${url.hostname} resolves to ${dns.address}`));
  }

  const auth = authHeaders(config);
  const dispatcher = createDispatcher(config, runtime, { connections: 1 });
  try {
    let status: number;
    let location: string | undefined;
    try {
      const response = await guarded(request(url, { method: 'GET', headers: 'headers' in auth ? auth.headers : {}, dispatcher, signal, headersTimeout: timeout, bodyTimeout: timeout }), signal, timeout + 1000);
      status = response.statusCode;
      const header = response.headers.location;
      location = Array.isArray(header) ? header[0] : header;
      // read (a little of) the answer so that the socket ends cleanly; its content does not matter
      await response.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
    } catch (error) {
      const failure = classify(error, { viaProxy: proxy !== undefined, signal });
      // the runtime aborts Test Connection only at its time limit
      if (failure.kind === 'aborted') failure.kind = 'timeout';
      // a name that resolved a moment ago and not now: the failed DNS check replaces the passed one
      const kept = failure.kind === 'dns' ? checks.filter((c) => c.id !== 'dns') : checks;
      return { checks: [...kept, ...networkChecks(failure, url, config, proxy, timeout, signal.aborted)] };
    }
    if (proxy) checks.push(make('proxy', 'ok', `connected through ${proxy}`));
    checks.push(make('connection', 'ok', `connected to ${url.host}`));
    if (url.protocol === 'https:') checks.push(make('tls', 'ok', `the certificate of ${url.hostname} is trusted`));
    checks.push(authenticationCheck(config, status, location, url, 'problem' in auth ? auth.problem : undefined));
    return { checks };
  } finally {
    void dispatcher.close().catch(() => undefined);
  }
}
