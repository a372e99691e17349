import { STATUS_CODES } from 'node:http';
import { Transform, type Readable } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import { result, type InputDocument, type OperationContext, type OperationHandler, type OperationResult } from 'quark/sdk';
import { authHeaders, buildUrl, displayUrl, targetOf, timeoutOf, type HttpConfig } from './config.js';
import { classify, proxyProblem, type Failure } from './errors.js';
import { headersProblem } from './headers.js';
import { createDispatcherCache, guarded, proxyUrl } from './transport.js';

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

/**
 * The request headers a document's parameters and properties ask for, lower-cased: the
 * `headers` parameter (not those the connection or the body decide) and, with a body,
 * the content type.
 */
function userHeaders(parameters: Parameters, document: InputDocument, withBody: boolean): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(parameters.headers ?? {})) {
    if (!reservedRequestHeaders.has(name.toLowerCase())) headers[name.toLowerCase()] = value;
  }
  if (withBody) {
    headers['content-type'] = parameters.contentType ?? document.properties['http.contentType'] ?? headers['content-type'] ?? 'application/octet-stream';
  }
  return headers;
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

      const withBody = method === 'POST' || method === 'PUT' || method === 'PATCH';
      const headers = userHeaders(parameters, document, withBody);
      // user text that HTTP cannot carry is this document's problem, named, not a TypeError
      const problem = headersProblem(headers);
      if (problem !== undefined) return result.applicationError(problem, { code: 'InvalidHeader' });
      Object.assign(headers, auth.headers);
      if (withBody) headers['content-length'] = String(document.body.size);

      // the signal stops the request until this handler returns; then the runtime owns the
      // response body, and stops reading it (destroying the stream) when it aborts
      const own = new AbortController();
      const stop = () => own.abort(signal.reason);
      if (signal.aborted) stop();
      else signal.addEventListener('abort', stop, { once: true });
      try {
        return await send({
          url,
          method,
          headers,
          ...(withBody ? { body: document.body } : {}),
          dispatcher: dispatchers.get(config, context.runtime),
          signal: own.signal,
          timeout: timeoutOf(config),
          proxy: proxyUrl(context.runtime),
          credentials: Boolean(config.proxyUser),
          progress: context.progress,
        });
      } finally {
        signal.removeEventListener('abort', stop);
      }
    };
  return { get: call('GET'), post: call('POST'), put: call('PUT'), patch: call('PATCH'), delete: call('DELETE') };
}

interface Call {
  url: URL;
  method: Method;
  headers: Record<string, string>;
  /** The request body, for POST, PUT and PATCH. */
  body?: InputDocument['body'];
  dispatcher: Dispatcher;
  signal: AbortSignal;
  timeout: number;
  /** The runtime's proxy URL, when requests go through it. */
  proxy: string | undefined;
  /** Whether the connection has proxy credentials. */
  credentials: boolean;
  progress: OperationContext<HttpConfig, Parameters>['progress'];
}

const failureWords: Record<string, string> = {
  dns: 'the host name does not resolve',
  refused: 'the connection was refused or dropped',
  tls: 'TLS failed',
};

/** Why a request got no answer, naming the runtime's proxy when it was the one that failed. */
function failureText(failure: Failure, call: Call): string {
  const target = targetOf(call.url);
  const proxyWords = proxyProblem(failure, { proxy: call.proxy, target, credentials: call.credentials });
  if (proxyWords !== undefined) return proxyWords;
  if (failure.kind === 'timeout') {
    // a silent tunnel: the proxy took the CONNECT and never answered it
    if (call.proxy && failure.noAnswer) return `no answer through the runtime's HTTP proxy ${call.proxy} from ${target} within ${call.timeout} ms: the proxy cannot reach the host or is too slow`;
    return `no answer within ${call.timeout} ms`;
  }
  return failureWords[failure.kind] ?? 'failed';
}

/** The document body as a stream that reports the bytes sent as progress. */
function counted(body: InputDocument['body'], progress: Call['progress']): Readable {
  let done = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      done += chunk.length;
      progress(done, body.size);
      callback(null, chunk);
    },
  });
  const source = body.stream();
  source.on('error', (error) => counter.destroy(error));
  return source.pipe(counter);
}

/** One request: its response as one result. */
async function send(call: Call): Promise<OperationResult> {
  const { url, method, timeout, signal } = call;
  const where = `${method} ${displayUrl(url)}`;
  let response: Dispatcher.ResponseData;
  try {
    response = await guarded(request(url, {
      method,
      headers: call.headers,
      dispatcher: call.dispatcher,
      signal,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      ...(call.body ? { body: call.body.size > 0 ? counted(call.body, call.progress) : '' } : {}),
    }), signal, timeout + 1000);
  } catch (error) {
    if (signal.aborted) {
      const reason = (signal.reason as { message?: string } | undefined)?.message ?? 'aborted';
      return result.failure(`${where}: stopped before the answer (${reason})`, { code: 'Aborted' });
    }
    const failure = classify(error, { viaProxy: call.proxy !== undefined, signal });
    return result.failure(`${where}: ${failureText(failure, call)} (${failure.code}): ${failure.detail}`, { code: failure.code });
  }

  const { statusCode } = response;
  const statusText = STATUS_CODES[statusCode] ?? '';
  const properties = responseProperties(url, statusCode, statusText, response.headers);
  if (statusCode < 200 || statusCode > 299) {
    const text = await excerpt(response.body);
    return result.applicationError(`${where} answered ${statusCode}${statusText ? ` ${statusText}` : ''}${text ? `: ${text}` : ''}`, { code: `HTTP${statusCode}`, properties });
  }
  // a body error with nobody reading any more must not crash the worker; a reader still sees it
  response.body.on('error', () => undefined);
  const length = Number(response.headers['content-length']);
  const size = Number.isFinite(length) ? length : undefined;
  call.progress(0, size);
  return result.success({ properties, body: response.body, ...(size !== undefined ? { size } : {}) });
}
