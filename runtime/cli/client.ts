import { request } from 'undici';
import { QuarkError, quarkError, fromPlainError, messageOf } from '../core/errors.js';
import type { Profile } from './profile.js';

/** The CLI's only way into a runtime: its HTTP API, as the profile's account. */
export interface ApiClient {
  call<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T>;
}

export function createApiClient(profile: Profile): ApiClient {
  return {
    async call<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
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
        throw quarkError('QUARK_ERR_CLI_UNREACHABLE', `cannot reach the runtime at ${profile.url}: ${messageOf(error)}`, undefined, error);
      }
      const text = await response.body.text();
      let parsed: unknown = undefined;
      if (text.length > 0) {
        try {
          parsed = JSON.parse(text);
        } catch {
          throw quarkError('QUARK_ERR_CLI_UNREACHABLE', `${profile.url} answered HTTP ${response.statusCode} with something that is not a quark runtime`);
        }
      }
      if (response.statusCode >= 400) {
        const error = (parsed as { error?: { code?: string; message?: string; details?: unknown } } | undefined)?.error;
        if (error?.code) throw Object.assign(fromPlainError(error), { httpStatus: response.statusCode });
        throw quarkError('QUARK_ERR_API_INTERNAL', `the runtime answered HTTP ${response.statusCode}`);
      }
      return parsed as T;
    },
  };
}

export type ClientError = QuarkError & { httpStatus?: number };
