import { request } from 'undici';
import { type QuarkError, quarkError, fromPlainError, messageOf } from '../core/errors.js';
import type { Profile } from './profile.js';

/** The CLI's only way into a runtime: its HTTP API, as the profile's account. */
export interface ApiClient {
  call<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T>;
  /** A non-JSON answer (an execution log), as text. */
  text(method: 'GET', path: string): Promise<string>;
  /**
   * A streamed NDJSON answer (Accept: application/x-ndjson): `onLine` gets each line, parsed,
   * as it arrives; the next is read once it returned (or its promise settled). An error
   * answer throws as `call` does.
   */
  stream(method: 'POST', path: string, body: unknown, onLine: (line: Record<string, unknown>) => unknown): Promise<void>;
}

/** Why a runtime could not be reached, in words, with what to try next. */
export function unreachable(url: string, error: unknown): QuarkError {
  const raw = (error as { code?: unknown }).code;
  const code = typeof raw === 'string' ? raw : '';
  const { protocol, host, hostname } = new URL(url);
  let why: string;
  if (protocol === 'https:' && /^ERR_SSL_|^EPROTO$/.test(code)) {
    why = `it does not answer HTTPS (the TLS handshake failed); if the runtime serves plain HTTP, log in with --url http://${host}`;
  } else if (code === 'ECONNREFUSED') {
    why = 'nothing listens there (connection refused); is the runtime running? Start it with quark start, or check the URL (quark login --url <url>)';
  } else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    why = `the host name "${hostname}" is not known; check the URL (quark login --url <url>)`;
  } else if (protocol === 'http:' && /^UND_ERR_SOCKET$|^ECONNRESET$/.test(code)) {
    why = `it closed the connection (${messageOf(error)}); if the runtime serves HTTPS, log in with --url https://${host}`;
  } else {
    why = `${messageOf(error)}; is the runtime running (quark start) at this URL?`;
  }
  return quarkError('QUARK_ERR_CLI_UNREACHABLE', `cannot reach the runtime at ${url}: ${why}`, undefined, error);
}

/** The lines of an NDJSON body as they arrive, each parsed; a line is handed on once the one before it was dealt with. */
async function eachLine(body: AsyncIterable<Buffer>, onLine: (line: Record<string, unknown>) => unknown): Promise<void> {
  let pending = '';
  const decoder = new TextDecoder();
  for await (const chunk of body) {
    pending += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, end);
      pending = pending.slice(end + 1);
      if (line.length > 0) await onLine(JSON.parse(line) as Record<string, unknown>);
    }
  }
  if (pending.trim().length > 0) await onLine(JSON.parse(pending) as Record<string, unknown>);
}

export function createApiClient(profile: Profile): ApiClient {
  /** `accept`: a streamed answer, which may be quiet for as long as its execution makes no document (no body timeout). */
  async function open(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown, accept?: string) {
    try {
      return await request(`${profile.url}/api/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${profile.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(accept ? { accept } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        headersTimeout: 120_000,
        bodyTimeout: accept ? 0 : 120_000,
      });
    } catch (error) {
      throw unreachable(profile.url, error);
    }
  }

  async function send(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<{ statusCode: number; text: string }> {
    const response = await open(method, path, body);
    return { statusCode: response.statusCode, text: await response.body.text() };
  }

  function parse(statusCode: number, text: string): unknown {
    let parsed: unknown = undefined;
    if (text.length > 0) {
      try {
        parsed = JSON.parse(text);
      } catch {
        throw quarkError('QUARK_ERR_CLI_UNREACHABLE', `${profile.url} answered HTTP ${statusCode} with something that is not a quark runtime`);
      }
    }
    if (statusCode >= 400) {
      const error = (parsed as { error?: { code?: string; message?: string; details?: unknown } } | undefined)?.error;
      if (error?.code) throw Object.assign(fromPlainError(error), { httpStatus: statusCode });
      throw quarkError('QUARK_ERR_API_INTERNAL', `the runtime answered HTTP ${statusCode}`);
    }
    return parsed;
  }

  return {
    async stream(method, path, body, onLine) {
      const response = await open(method, path, body, 'application/x-ndjson');
      if (response.statusCode >= 400) {
        parse(response.statusCode, await response.body.text());
        return;
      }
      try {
        await eachLine(response.body, onLine);
      } catch (error) {
        if (error instanceof SyntaxError) throw quarkError('QUARK_ERR_CLI_UNREACHABLE', `${profile.url} streamed something that is not a quark runtime's answer`);
        throw error;
      }
    },
    async text(method, path) {
      const { statusCode, text } = await send(method, path);
      if (statusCode >= 400) parse(statusCode, text);
      return text;
    },
    async call<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
      const { statusCode, text } = await send(method, path, body);
      return parse(statusCode, text) as T;
    },
  };
}

export type ClientError = QuarkError & { httpStatus?: number };
