import { STATUS_CODES } from 'node:http';
import type { Readable } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import { result, type InputDocument, type OperationContext, type OperationHandler, type OperationResult } from 'quark/sdk';
import { authHeaders, buildUrl, displayUrl, timeoutOf, type HttpConfig } from './config.js';
import { classify } from './errors.js';
import { createDispatcherCache } from './transport.js';

export interface Parameters {
  path?: string;
  query?: Record<string, string | number | boolean>;
  headers?: Record<string, string>;
  contentType?: string;
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/**
 * Response headers not turned into properties: cookies are session credentials, and
 * hop-by-hop headers describe this one socket, not the answer.
 */
const skippedHeaders = new Set(['set-cookie', 'set-cookie2', 'connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate', 'proxy-connection']);
/** Request headers the connection or the body decide; a parameter cannot set them. */
const reservedRequestHeaders = new Set(['host', 'content-length', 'transfer-encoding', 'connection']);
const excerptBytes = 300;

/** The query: the parameter when given, else the document properties http.query.<name>. */
function queryOf(parameters: Parameters, document: InputDocument): Record<string, string | number | boolean> {
  if (parameters.query !== undefined) return parameters.query;
  const query: Record<string, string> = {};
  for (const [name, value] of Object.entries(document.properties)) {
    if (name.startsWith('http.query.') && name.length > 'http.query.'.length) query[name.slice('http.query.'.length)] = value;
  }
  return query;
}

/** http.status, http.statusText, http.url and http.header.<lower-case name> (set-cookie and hop-by-hop headers skipped). */
export function responseProperties(url: URL, statusCode: number, statusText: string, headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const properties: Record<string, string> = { 'http.status': String(statusCode), 'http.statusText': statusText, 'http.url': displayUrl(url) };
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (value === undefined || skippedHeaders.has(lower)) continue;
    properties[`http.header.${lower}`] = Array.isArray(value) ? value.join(', ') : value;
  }
  return properties;
}

/** The first bytes of a refused response's body, as one line of text; the rest is discarded. */
async function excerpt(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  // destroying a body early may report an abort later: never an unhandled 'error'
  body.on('error', () => undefined);
  try {
    for await (const chunk of body) {
      chunks.push(chunk as Buffer);
      length += (chunk as Buffer).length;
      if (length >= excerptBytes) break;
    }
  } catch {
    /* a broken body still gives its status */
  } finally {
    body.destroy();
  }
  const text = Buffer.concat(chunks).subarray(0, excerptBytes).toString('utf8').replace(/\s+/g, ' ').trim();
  return length > excerptBytes ? `${text}…` : text;
}


export function createOperations(dispatchers = createDispatcherCache()): Record<string, OperationHandler<HttpConfig, Parameters>> {
  const call = (method: Method) =>
    async function operation(context: OperationContext<HttpConfig, Parameters>, document: InputDocument): Promise<OperationResult> {
      const { config, parameters, signal } = context;
      const auth = authHeaders(config);
      if ('problem' in auth) return result.failure(`the connection is incomplete: ${auth.problem}`, { code: 'ConnectionIncomplete' });

      let url: URL;
      try {
        url = buildUrl(config.baseUrl, parameters.path ?? document.properties['http.path'], queryOf(parameters, document));
      } catch (error) {
        return result.applicationError(`not a valid URL from the base URL and path: ${(error as Error).message}`, { code: 'InvalidUrl' });
      }

      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(parameters.headers ?? {})) {
        if (!reservedRequestHeaders.has(name.toLowerCase())) headers[name.toLowerCase()] = value;
      }
      Object.assign(headers, auth.headers);
      const withBody = method === 'POST' || method === 'PUT' || method === 'PATCH';
      if (withBody) {
        headers['content-type'] = parameters.contentType ?? document.properties['http.contentType'] ?? headers['content-type'] ?? 'application/octet-stream';
        headers['content-length'] = String(document.body.size);
      }

      const dispatcher: Dispatcher = dispatchers.get(config, context.runtime);
      const timeout = timeoutOf(config);
      const where = `${method} ${displayUrl(url)}`;
      let response: Dispatcher.ResponseData;
      try {
        response = await request(url, {
          method,
          headers,
          dispatcher,
          signal,
          headersTimeout: timeout,
          bodyTimeout: timeout,
          ...(withBody ? { body: document.body.size > 0 ? document.body.stream() : '' } : {}),
        });
      } catch (error) {
        if (signal.aborted) {
          const reason = (signal.reason as { message?: string } | undefined)?.message ?? 'aborted';
          return result.failure(`${where}: stopped before the answer (${reason})`, { code: 'Aborted' });
        }
        const failure = classify(error, { viaProxy: context.runtime.proxy !== undefined, signal });
        const what: Record<string, string> = {
          dns: 'the host name does not resolve',
          refused: 'the connection was refused or dropped',
          tls: 'TLS failed',
          timeout: `no answer within ${timeout} ms`,
          'proxy-auth': "the runtime's HTTP proxy refused the proxy credentials (HTTP 407)",
          'proxy-refused': `the runtime's HTTP proxy refused the request (HTTP ${failure.status})`,
          'proxy-unreachable': "cannot connect to the runtime's HTTP proxy",
          aborted: 'cancelled',
          other: 'failed',
        };
        return result.failure(`${where}: ${what[failure.kind]} (${failure.code}): ${failure.detail}`, { code: failure.code });
      }

      const { statusCode } = response;
      const statusText = STATUS_CODES[statusCode] ?? '';
      const properties = responseProperties(url, statusCode, statusText, response.headers);
      if (statusCode < 200 || statusCode > 299) {
        const text = await excerpt(response.body);
        return result.applicationError(`${where} answered ${statusCode}${statusText ? ` ${statusText}` : ''}${text ? `: ${text}` : ''}`, { code: `HTTP${statusCode}`, properties });
      }
      const length = Number(response.headers['content-length']);
      context.progress(0, Number.isFinite(length) ? length : undefined);
      return result.success({ properties, body: response.body, ...(Number.isFinite(length) ? { size: length } : {}) });
    };
  return { get: call('GET'), post: call('POST'), put: call('PUT'), patch: call('PATCH'), delete: call('DELETE') };
}
