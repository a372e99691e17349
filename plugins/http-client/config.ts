/** The connection configuration, as connection.schema.json describes it. */
export interface HttpConfig {
  baseUrl: string;
  testPath?: string;
  authKind: 'none' | 'basic' | 'bearer' | 'apiKey';
  username?: string;
  password?: string;
  bearerToken?: string;
  apiKeyHeader?: string;
  apiKeyValue?: string;
  timeoutMs?: number;
  caCertificate?: string;
  proxyUser?: string;
  proxyPassword?: string;
}

export const defaultTimeoutMs = 30_000;

export const timeoutOf = (config: HttpConfig): number => config.timeoutMs ?? defaultTimeoutMs;

/**
 * The authentication header of a connection, or a problem that names the missing field.
 * Fields of another authentication kind are ignored.
 */
export function authHeaders(config: HttpConfig): { headers: Record<string, string> } | { problem: string } {
  switch (config.authKind) {
    case 'basic':
      if (!config.username) return { problem: 'Basic authentication needs "User name"' };
      return { headers: { authorization: `Basic ${Buffer.from(`${config.username}:${config.password ?? ''}`).toString('base64')}` } };
    case 'bearer':
      if (!config.bearerToken) return { problem: 'Bearer authentication needs "Bearer token"' };
      return { headers: { authorization: `Bearer ${config.bearerToken}` } };
    case 'apiKey':
      if (!config.apiKeyValue) return { problem: 'API key authentication needs "API key"' };
      return { headers: { [(config.apiKeyHeader ?? 'X-API-Key').toLowerCase()]: config.apiKeyValue } };
    default:
      return { headers: {} };
  }
}

/** base URL + path + query; a leading or trailing slash on either side is not doubled. */
export function buildUrl(baseUrl: string, path: string | undefined, query: Record<string, string | number | boolean> = {}): URL {
  let href = baseUrl;
  if (path !== undefined && path !== '') href = `${baseUrl.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
  const url = new URL(href);
  for (const [name, value] of Object.entries(query)) url.searchParams.append(name, String(value));
  return url;
}

/** A URL for messages: no user info (the schema refuses it; belt and braces). */
export function displayUrl(url: URL | string): string {
  const u = new URL(String(url));
  u.username = '';
  u.password = '';
  return u.href;
}

/** host:port of a URL, with the scheme's default port when it has none. */
export function targetOf(url: URL): string {
  return `${url.hostname}:${url.port || (url.protocol === 'https:' ? 443 : 80)}`;
}
