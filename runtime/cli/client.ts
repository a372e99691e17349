import { request } from 'undici';
import { type QuarkError, quarkError, fromPlainError, messageOf } from '../core/errors.js';
import type { Profile } from './profile.js';

/** The CLI's only way into a runtime: its HTTP API, as the profile's account. */
export interface ApiClient {
  call<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T>;
  /** A non-JSON answer (an execution log), as text. */
  text(method: 'GET', path: string): Promise<string>;
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

export function createApiClient(profile: Profile): ApiClient {
  async function send(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<{ statusCode: number; text: string }> {
    let response;
    try {
      response = await request(`${profile.url}/api/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${profile.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        headersTimeout: 120_000,
        bodyTimeout: 120_000,
      });
    } catch (error) {
      throw unreachable(profile.url, error);
    }
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
