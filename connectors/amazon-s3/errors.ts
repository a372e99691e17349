/**
 * Tells S3 failures apart, however the HTTP stack reports them: an S3 error code, a bare
 * HTTP status (HEAD has no body), an undici error for the proxy tunnel, or a socket error.
 */

export type FailureKind =
  | 'timeout'
  | 'proxy-auth'
  | 'proxy-refused'
  | 'proxy-unreachable'
  | 'endpoint-unreachable'
  | 'unknown-access-key'
  | 'wrong-secret-key'
  | 'clock-skew'
  | 'access-denied'
  | 'not-found'
  | 'wrong-region'
  | 'other';

export interface Failure {
  kind: FailureKind;
  /** The S3 error code or the network error code. */
  code: string;
  status?: number;
  /** The region the server names (x-amz-bucket-region), for wrong-region. */
  region?: string;
  /** For clock skew: server time minus local time, in seconds, when the server said. */
  skewSeconds?: number;
  detail: string;
}

const networkCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'EPIPE']);
const timeoutCodes = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  cause?: unknown;
  $metadata?: { httpStatusCode?: number };
  $response?: { statusCode?: number; headers?: Record<string, string> };
  BucketRegion?: string;
}

function chain(error: unknown): SdkError[] {
  const seen: SdkError[] = [];
  let current = error as SdkError | undefined;
  while (current && typeof current === 'object' && seen.length < 8 && !seen.includes(current)) {
    seen.push(current);
    current = current.cause as SdkError | undefined;
  }
  return seen;
}

export function classify(error: unknown, context: { viaProxy: boolean; signal: AbortSignal }): Failure {
  const errors = chain(error);
  const top = errors[0] ?? {};
  const status = top.$metadata?.httpStatusCode ?? top.$response?.statusCode;
  const headers = top.$response?.headers ?? {};
  const name = top.name ?? 'Error';
  const message = top.message ?? String(error);

  // The proxy's answer to CONNECT comes back from the proxy agent as a plain error with
  // the status in its message ("Bad response: 407"); it is a proxy refusal, never a cancel.
  for (const e of errors) {
    const proxyStatus = /^Bad response: (\d{3})$/.exec(e.message ?? '');
    if (proxyStatus) {
      const code = Number(proxyStatus[1]);
      // 407 when credentials are missing; some proxies (tinyproxy) answer 401 to wrong ones
      if (code === 407 || code === 401) return { kind: 'proxy-auth', code: 'ProxyAuthenticationRequired', status: code, detail: e.message ?? '' };
      if (code === 502 || code === 503 || code === 504) return { kind: 'endpoint-unreachable', code: `ProxyResponse${code}`, status: code, detail: `the proxy could not reach the endpoint (HTTP ${code})` };
      return { kind: 'proxy-refused', code: `ProxyResponse${code}`, status: code, detail: e.message ?? '' };
    }
  }
  if (status === 407) return { kind: 'proxy-auth', code: 'ProxyAuthenticationRequired', status, detail: message };

  if (context.signal.aborted && (context.signal.reason as Error | undefined)?.name === 'TimeoutError') {
    return { kind: 'timeout', code: 'Timeout', detail: message };
  }
  for (const e of errors) {
    if (e.name === 'TimeoutError' || (e.code && timeoutCodes.has(e.code))) return { kind: 'timeout', code: e.code ?? 'Timeout', detail: e.message ?? '' };
  }
  for (const e of errors) {
    if (e.code && networkCodes.has(e.code)) {
      return { kind: context.viaProxy ? 'proxy-unreachable' : 'endpoint-unreachable', code: e.code, detail: e.message ?? '' };
    }
  }

  const region = headers['x-amz-bucket-region'] ?? top.BucketRegion;
  switch (name) {
    case 'InvalidAccessKeyId':
      return { kind: 'unknown-access-key', code: name, status, detail: message };
    case 'SignatureDoesNotMatch':
      return { kind: 'wrong-secret-key', code: name, status, detail: message };
    case 'RequestTimeTooSkewed': {
      const serverDate = headers.date ? Date.parse(headers.date) : Number.NaN;
      return { kind: 'clock-skew', code: name, status, detail: message, ...(Number.isFinite(serverDate) ? { skewSeconds: Math.round((serverDate - Date.now()) / 1000) } : {}) };
    }
    case 'AccessDenied':
    case 'Forbidden':
      return { kind: 'access-denied', code: name, status, detail: message };
    case 'NoSuchBucket':
    case 'NotFound':
      return { kind: 'not-found', code: name, status, detail: message };
    case 'PermanentRedirect':
    case 'AuthorizationHeaderMalformed':
    case 'IllegalLocationConstraintException':
      if (region) return { kind: 'wrong-region', code: name, status, region, detail: message };
  }
  if (status === 301 || (status === 400 && region)) return { kind: 'wrong-region', code: name, status, ...(region ? { region } : {}), detail: message };
  if (status === 403) return { kind: 'access-denied', code: name === 'Error' || /^\d+$/.test(name) ? 'Forbidden' : name, status, detail: message };
  if (status === 404) return { kind: 'not-found', code: name === 'Error' || /^\d+$/.test(name) ? 'NotFound' : name, status, detail: message };
  return { kind: 'other', code: name, ...(status !== undefined ? { status } : {}), detail: message };
}

/** What the words about a proxy failure need to know. */
export interface ProxyScene {
  /** The runtime's proxy URL. */
  proxy: string | undefined;
  /** The S3 endpoint the tunnel was for. */
  endpoint: string;
  /** Whether the connection has an "HTTP proxy user". */
  credentials: boolean;
}

const statusText: Record<number, string> = { 401: 'Unauthorized', 407: 'Proxy Authentication Required' };

/**
 * A failure of the runtime's HTTP proxy in words that name the proxy and what to change
 * (the fields by their titles), or undefined when the proxy is not the one that failed.
 */
export function proxyProblem(failure: Failure, scene: ProxyScene): string | undefined {
  const { proxy, endpoint } = scene;
  const status = failure.status !== undefined ? `HTTP ${failure.status}${statusText[failure.status] ? ` ${statusText[failure.status]}` : ''}` : '';
  switch (failure.kind) {
    case 'proxy-auth':
      return scene.credentials
        ? `the proxy ${proxy} refused the credentials (${status}): check "HTTP proxy user" and "HTTP proxy password"`
        : `the proxy ${proxy} requires credentials (${status}): enter "HTTP proxy user" and "HTTP proxy password"`;
    case 'proxy-refused':
      return `the proxy ${proxy} could not or would not connect to ${endpoint} (${status}): check the endpoint URL, or ask the proxy's administrator to allow this destination`;
    case 'proxy-unreachable':
      return `cannot connect to the runtime's HTTP proxy ${proxy} (${failure.code}): check the proxy host and port in the runtime settings`;
    default:
      return undefined;
  }
}
