/**
 * Ranged GETs without a per-chunk allocation. The SDK still builds, signs, retries and
 * reads the errors of every request; only a GET with a Range header (a download's part)
 * comes here instead of to Node's HTTP stack: it goes out on a socket of our own whose
 * reads land in one buffer per socket (net's `onread`), reused for every read of every
 * request on it, and its body is written from that buffer straight to its place in the
 * output (`RawBody.writeInto`). Node's HTTP client instead allocates a new 64 KiB buffer
 * per socket read and a stream chunk per slice of it, and in a worker thread the collector
 * ran a mark-compact every few MiB for them (bench/RESULTS.md, 2026-12-03). Everything else
 * (PUTs, HEADs, lists) and every request through a proxy goes to the SDK's Node handler.
 */
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { Readable } from 'node:stream';
import type { NodeHttpHandler } from '@smithy/node-http-handler';
import { HttpResponse, buildQueryString } from '@smithy/core/protocols';
import type { HttpHandlerOptions, HttpRequest } from '@smithy/types';

/** Bytes of each socket's read buffer. */
const readBufferBytes = 256 * 1024;
/** Largest response head accepted. */
const maxHeadBytes = 64 * 1024;
/** Idle sockets kept per origin, and for how long. */
const maxIdle = 32;
const idleMs = 4_000;

export interface RawGetOptions {
  connectTimeoutMs: number;
  /** A request fails when its socket moves no byte for this long. */
  socketTimeoutMs: number;
  /** TLS options for https endpoints (a CA of one's own); Node's defaults otherwise. */
  tls?: ConnectionOptions;
}

/** Where the body's bytes go in positional mode: resolves when `bytes` may be reused. */
export type BodyTarget = (bytes: Uint8Array, position: number) => Promise<void>;

type Framing = { kind: 'length'; left: number } | { kind: 'chunked' } | { kind: 'close' };

const timeoutCodes = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT']);

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  const error = new Error(reason instanceof Error ? reason.message : 'Request aborted', { cause: reason });
  error.name = 'AbortError';
  return error;
}

/** A network error as the SDK's Node handler names it (its retry strategy retries a TimeoutError). */
function networkError(error: Error & { code?: string }): Error {
  if (error.code !== undefined && timeoutCodes.has(error.code)) error.name = 'TimeoutError';
  return error;
}

function timeoutError(what: string, ms: number): Error {
  return Object.assign(new Error(`${what} after ${ms} ms`), { name: 'TimeoutError', code: 'ETIMEDOUT' });
}

/**
 * One HTTP/1.1 connection with a reused read buffer. It runs one exchange at a time: the
 * head is parsed here, the body handed to whoever reads it (a RawBody), and the
 * connection goes back to its pool when the body ended and the server keeps it alive.
 */
class Connection {
  readonly socket: Socket;
  /** Called with each slice read, while an exchange reads; returns whether to keep reading. */
  private reader: ((bytes: Buffer) => boolean) | undefined;
  private failed: ((error: Error) => void) | undefined;
  busy = false;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly pool: Pool,
    secure: boolean,
    host: string,
    port: number,
  ) {
    const buffer = Buffer.allocUnsafe(readBufferBytes);
    const onread = { buffer, callback: (n: number, buf: Uint8Array) => this.onRead(Buffer.from(buf.buffer, buf.byteOffset, n)) };
    // tls.connect takes onread as net.connect does (Node's docs; @types/node leaves it out)
    this.socket = secure ? tlsConnect({ ...pool.options.tls, host, port, servername: isIP(host) ? undefined : host, ALPNProtocols: ['http/1.1'], onread } as ConnectionOptions) : netConnect({ host, port, onread });
    this.socket.setNoDelay(true);
    this.socket.on('error', (error) => this.fail(networkError(error)));
    this.socket.on('close', () => {
      this.pool.forget(this);
      this.fail(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET', name: 'TimeoutError' }));
    });
    this.socket.on('timeout', () => this.socket.destroy(timeoutError('the store sent nothing', this.pool.options.socketTimeoutMs)));
  }

  private onRead(bytes: Buffer): boolean {
    if (!this.reader) {
      // bytes outside an exchange: the server broke the protocol; do not reuse this socket
      this.socket.destroy();
      return false;
    }
    const more = this.reader(bytes);
    // an exchange that ended in this read left the connection idle: it reads on, to see a close
    return more || !this.busy;
  }

  /** Starts an exchange: `reader` gets the bytes read, `failed` a socket error or close. */
  take(reader: (bytes: Buffer) => boolean, failed: (error: Error) => void): void {
    clearTimeout(this.idleTimer);
    this.busy = true;
    this.reader = reader;
    this.failed = failed;
    this.socket.setTimeout(this.pool.options.socketTimeoutMs);
    this.socket.resume();
  }

  /** Ends an exchange; the socket goes back to the pool when it can carry another. */
  release(reusable: boolean): void {
    this.reader = undefined;
    this.failed = undefined;
    this.busy = false;
    this.socket.setTimeout(0);
    if (!reusable || this.socket.destroyed || !this.pool.keep(this)) {
      this.socket.destroy();
      return;
    }
    // the last read may have stopped the socket (onread returned false): read on while idle, to see its close
    this.socket.resume();
    this.idleTimer = setTimeout(() => this.socket.destroy(), idleMs);
    this.idleTimer.unref();
  }

  private fail(error: Error): void {
    const failed = this.failed;
    this.reader = undefined;
    this.failed = undefined;
    failed?.(error);
  }
}

/** Idle connections per origin. */
class Pool {
  private readonly idle = new Map<string, Connection[]>();
  private readonly origins = new WeakMap<Connection, string>();

  constructor(readonly options: RawGetOptions) {}

  /** An idle connection to the origin, or a new one (resolves once it is connected). */
  acquire(secure: boolean, host: string, port: number, signal: AbortSignal | undefined): Promise<Connection> {
    const origin = `${secure ? 's' : ''}${host}:${port}`;
    const list = this.idle.get(origin);
    while (list && list.length > 0) {
      const connection = list.pop()!;
      if (!connection.socket.destroyed) return Promise.resolve(connection);
    }
    const connection = new Connection(this, secure, host, port);
    this.origins.set(connection, origin);
    return new Promise((resolve, reject) => {
      const socket = connection.socket;
      const done = (error?: Error) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        socket.off(secure ? 'secureConnect' : 'connect', onConnect);
        socket.off('error', onError);
        if (error) {
          socket.destroy();
          reject(error);
        } else resolve(connection);
      };
      const onConnect = () => done();
      const onError = (error: Error) => done(networkError(error));
      const onAbort = () => done(abortError(signal!));
      const timer = setTimeout(() => done(timeoutError(`no connection to ${host}:${port}`, this.options.connectTimeoutMs)), this.options.connectTimeoutMs);
      socket.once(secure ? 'secureConnect' : 'connect', onConnect);
      socket.once('error', onError);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  keep(connection: Connection): boolean {
    const origin = this.origins.get(connection)!;
    const list = this.idle.get(origin) ?? [];
    if (list.length >= maxIdle) return false;
    list.push(connection);
    this.idle.set(origin, list);
    return true;
  }

  forget(connection: Connection): void {
    const list = this.idle.get(this.origins.get(connection) ?? '');
    const at = list?.indexOf(connection) ?? -1;
    if (at >= 0) list!.splice(at, 1);
  }

  destroy(): void {
    for (const list of this.idle.values()) for (const connection of list) connection.socket.destroy();
    this.idle.clear();
  }
}

interface Head {
  status: number;
  reason: string;
  headers: Record<string, string>;
  keepAlive: boolean;
}

function parseHead(text: string): Head {
  const lines = text.split('\r\n');
  const status = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/.exec(lines[0] ?? '');
  if (!status) throw Object.assign(new Error(`the store answered something that is not HTTP/1.x: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`), { code: 'HPE_INVALID_CONSTANT' });
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]},${value}` : value;
  }
  const connection = (headers['connection'] ?? '').toLowerCase();
  const keepAlive = status[1] === '1' ? !connection.includes('close') : connection.includes('keep-alive');
  return { status: Number(status[2]), reason: status[3] ?? '', headers, keepAlive };
}

function framingOf(head: Head, method: string): Framing {
  if (method === 'HEAD' || head.status === 204 || head.status === 304) return { kind: 'length', left: 0 };
  if ((head.headers['transfer-encoding'] ?? '').toLowerCase().includes('chunked')) return { kind: 'chunked' };
  const length = head.headers['content-length'];
  if (length !== undefined && /^\d+$/.test(length)) return { kind: 'length', left: Number(length) };
  return { kind: 'close' };
}

/**
 * A response body read from a Connection. Read as a Readable it copies each slice out of
 * the connection's buffer (the SDK's error parsing, a one-GET Get); `writeInto` instead
 * writes the slices from that buffer to their positions and copies nothing. Until one of
 * the two starts, the socket is paused (what came with the head waits in a copy).
 */
export class RawBody extends Readable {
  /** The body's length when the store said it (Content-Length), else undefined. */
  readonly length: number | undefined;
  private mode: 'none' | 'stream' | 'target' = 'none';
  /** Copies of bytes read before a reader was there. */
  private readonly pending: Buffer[] = [];
  private target: { write: BodyTarget; position: number; resolve: (n: number) => void; reject: (e: Error) => void } | undefined;
  /** The write of the connection's buffer under way (positional mode). */
  private inFlight: Promise<void> | undefined;
  /** Bytes handed on: pushed, or written and their write done. */
  private written = 0;
  /** All of the body was read from the socket. */
  private ended = false;
  private released = false;
  private reusable: boolean;
  private readonly chunked = { size: -1, line: '', trailer: false };

  constructor(
    private readonly connection: Connection,
    private readonly framing: Framing,
    keepAlive: boolean,
  ) {
    super({ highWaterMark: 256 * 1024 });
    this.length = framing.kind === 'length' ? framing.left : undefined;
    this.reusable = keepAlive && framing.kind !== 'close';
  }

  /** Takes over the connection's reads, with the bytes that came after the head; returns whether to read on. */
  start(rest: Buffer): boolean {
    this.connection.take(
      (bytes) => this.onBytes(bytes),
      (error) => this.onError(error),
    );
    if (this.framing.kind === 'length' && this.framing.left === 0) {
      this.end_();
      return false;
    }
    if (rest.length > 0) this.onBytes(rest);
    return false;
  }

  /**
   * Writes the body to `write`, its first byte at `position`, and resolves to the bytes
   * written: each read goes out from the connection's buffer, and the socket is paused
   * until it is written. On failure the error carries `received` (the bytes written).
   */
  writeInto(write: BodyTarget, position: number): Promise<number> {
    if (this.framing.kind === 'chunked' || this.mode !== 'none') return this.writeByStream(write, position);
    this.mode = 'target';
    return new Promise((resolve, reject) => {
      this.target = { write, position, resolve, reject };
      void this.drainPending();
    });
  }

  private async writeByStream(write: BodyTarget, position: number): Promise<number> {
    let at = position;
    try {
      for await (const chunk of this) {
        await write(chunk as Buffer, at);
        at += (chunk as Buffer).length;
      }
    } catch (error) {
      throw Object.assign(error as Error, { received: at - position });
    }
    return at - position;
  }

  private async drainPending(): Promise<void> {
    const target = this.target!;
    try {
      while (this.pending.length > 0) {
        const bytes = this.pending.shift()!;
        await target.write(bytes, target.position);
        target.position += bytes.length;
        this.written += bytes.length;
      }
    } catch (error) {
      return this.failTarget(error as Error);
    }
    if (!this.target) return;
    if (this.ended) return this.settle();
    this.resumeSocket();
  }

  private settle(): void {
    const target = this.target!;
    this.target = undefined;
    this.push(null);
    this.resume();
    target.resolve(this.written);
  }

  /** Fails the positional write once the write under way is done (so `received` counts it). */
  private failTarget(error: Error): void {
    const target = this.target;
    if (!target) return;
    this.target = undefined;
    this.reusable = false;
    this.connection.socket.destroy();
    void (this.inFlight ?? Promise.resolve()).finally(() => {
      target.reject(Object.assign(error, { received: this.written }));
      if (!this.destroyed) this.destroy();
    });
  }

  private resumeSocket(): void {
    if (!this.connection.socket.destroyed && !this.ended) this.connection.socket.resume();
  }

  /** Bytes read: hands them on; returns false to pause the socket. */
  private onBytes(bytes: Buffer): boolean {
    if (this.destroyed && !this.target) {
      this.connection.socket.destroy();
      return false;
    }
    if (this.framing.kind === 'chunked') return this.onChunked(bytes);
    let body = bytes;
    if (this.framing.kind === 'length') {
      if (body.length > this.framing.left) {
        // more than the body: the connection is out of step, not to be used again
        body = body.subarray(0, this.framing.left);
        this.reusable = false;
      }
      this.framing.left -= body.length;
    }
    const last = this.framing.kind === 'length' && this.framing.left === 0;
    if (this.mode === 'target' && this.pending.length === 0) return this.writeRead(body, last);
    if (body.length > 0) {
      const copy = Buffer.from(body);
      if (this.mode === 'stream') {
        this.written += copy.length;
        const more = this.push(copy);
        if (last) this.end_();
        return more && !last;
      }
      this.pending.push(copy);
    }
    if (last) this.end_();
    return false;
  }

  /** Writes bytes straight from the connection's buffer; the socket waits until they are written. */
  private writeRead(body: Buffer, last: boolean): boolean {
    const target = this.target!;
    const at = target.position;
    target.position += body.length;
    this.inFlight = target.write(body, at).then(
      () => {
        this.inFlight = undefined;
        this.written += body.length;
        if (!last) return this.resumeSocket();
        this.end_();
      },
      (error: unknown) => {
        this.inFlight = undefined;
        this.failTarget(error as Error);
      },
    );
    return false;
  }

  /** A chunked body (error answers, some proxies): decoded into copies, read as a stream only. */
  private onChunked(bytes: Buffer): boolean {
    if (this.mode === 'none') this.mode = 'stream';
    const state = this.chunked;
    let at = 0;
    let keep = true;
    while (at < bytes.length && !this.ended) {
      if (state.size > 0) {
        const take = Math.min(state.size, bytes.length - at);
        this.written += take;
        keep = this.push(Buffer.from(bytes.subarray(at, at + take))) && keep;
        state.size -= take;
        at += take;
        if (state.size === 0) state.size = -2; // the CRLF after the data
        continue;
      }
      const newline = bytes.indexOf(10, at);
      state.line += bytes.toString('latin1', at, newline < 0 ? bytes.length : newline + 1);
      at = newline < 0 ? bytes.length : newline + 1;
      if (!state.line.endsWith('\n')) continue;
      const line = state.line.trim();
      state.line = '';
      if (state.size === -2) {
        state.size = -1;
      } else if (state.trailer) {
        if (line === '') this.end_();
      } else {
        const size = parseInt(line.split(';')[0]!, 16);
        if (Number.isNaN(size)) {
          this.reusable = false;
          this.onError(Object.assign(new Error("a malformed chunk in the store's answer"), { code: 'HPE_INVALID_CHUNK_SIZE' }));
          return false;
        }
        if (size === 0) state.trailer = true;
        else state.size = size;
      }
    }
    return keep && !this.ended;
  }

  /** All of the body was read: the connection goes back to its pool, the reader is told. */
  private end_(): void {
    if (this.ended) return;
    this.ended = true;
    this.releaseConnection();
    if (this.mode === 'stream' || this.framing.kind === 'chunked') this.push(null);
    else if (this.mode === 'target' && this.pending.length === 0 && !this.inFlight) this.settle();
  }

  private releaseConnection(): void {
    if (this.released) return;
    this.released = true;
    this.connection.release(this.reusable);
  }

  private onError(error: Error): void {
    if (this.ended) return;
    if (this.framing.kind === 'close' && (error as { code?: string }).code === 'ECONNRESET' && error.message === 'socket hang up') {
      // a body framed by the connection's end ends with it
      this.reusable = false;
      return this.end_();
    }
    this.released = true;
    if (this.target) this.failTarget(error);
    else if (!this.destroyed) this.destroy(error);
  }

  override _read(): void {
    if (this.mode === 'target') return;
    if (this.mode === 'none') {
      this.mode = 'stream';
      for (const copy of this.pending.splice(0)) {
        this.written += copy.length;
        this.push(copy);
      }
      if (this.ended) return void this.push(null);
    }
    this.resumeSocket();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.ended && !this.released) {
      this.released = true;
      this.connection.socket.destroy();
    }
    callback(error);
  }
}

/** Sends one GET on a pooled connection and resolves with its head and a RawBody. */
function exchange(pool: Pool, request: HttpRequest, signal: AbortSignal | undefined): Promise<HttpResponse> {
  const secure = request.protocol === 'https:';
  const host = request.hostname.startsWith('[') ? request.hostname.slice(1, -1) : request.hostname;
  const port = request.port ?? (secure ? 443 : 80);
  const query = request.query ? buildQueryString(request.query) : '';
  const path = `${request.path}${query ? `?${query}` : ''}`;
  return pool.acquire(secure, host, port, signal).then(
    (connection) =>
      new Promise<HttpResponse>((resolve, reject) => {
        if (signal?.aborted) {
          connection.release(true);
          return reject(abortError(signal));
        }
        const chunks: Buffer[] = [];
        let size = 0;
        let settled = false;
        const onAbort = () => {
          connection.socket.destroy();
          settle(abortError(signal!));
        };
        const settle = (error: Error | undefined, response?: HttpResponse) => {
          if (settled) return;
          settled = true;
          signal?.removeEventListener('abort', onAbort);
          if (error) reject(error);
          else resolve(response!);
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        connection.take(
          (bytes) => {
            chunks.push(Buffer.from(bytes));
            size += bytes.length;
            const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
            const end = all.indexOf('\r\n\r\n');
            if (end < 0) {
              if (size > maxHeadBytes) {
                connection.socket.destroy();
                settle(Object.assign(new Error('the store\'s answer has a head over 64 KiB'), { code: 'HPE_HEADER_OVERFLOW' }));
              }
              chunks.splice(0, chunks.length, all);
              return true;
            }
            let head: Head;
            try {
              head = parseHead(all.toString('latin1', 0, end));
            } catch (error) {
              connection.socket.destroy();
              settle(error as Error);
              return false;
            }
            if (head.status === 100) {
              chunks.splice(0, chunks.length, all.subarray(end + 4));
              size = chunks[0]!.length;
              return true;
            }
            const body = new RawBody(connection, framingOf(head, request.method), head.keepAlive);
            const keepReading = body.start(all.subarray(end + 4));
            settle(undefined, new HttpResponse({ statusCode: head.status, reason: head.reason, headers: head.headers, body }));
            return keepReading;
          },
          (error) => settle(error),
        );
        const lines = [`${request.method} ${path} HTTP/1.1`];
        const headers = request.headers;
        if (!Object.keys(headers).some((name) => name.toLowerCase() === 'host')) lines.push(`host: ${request.hostname}${request.port ? `:${request.port}` : ''}`);
        for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
        connection.socket.write(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
      }),
  );
}

/**
 * The SDK's request handler for a client that downloads: ranged GETs on our connections,
 * anything else to `fallback` (the SDK's Node handler, with its agents).
 */
export class RawGetHandler {
  readonly metadata = { handlerProtocol: 'http/1.1' };
  private readonly pool: Pool;

  constructor(
    private readonly fallback: NodeHttpHandler,
    options: RawGetOptions,
  ) {
    this.pool = new Pool(options);
  }

  handle(request: HttpRequest, options: HttpHandlerOptions = {}): Promise<{ response: HttpResponse }> {
    const ranged = request.method === 'GET' && request.body === undefined && Object.keys(request.headers).some((name) => name.toLowerCase() === 'range');
    if (!ranged) return this.fallback.handle(request as never, options);
    const signal = options.abortSignal as AbortSignal | undefined;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return exchange(this.pool, request, signal).then((response) => ({ response }));
  }

  updateHttpClientConfig(key: never, value: never): void {
    this.fallback.updateHttpClientConfig(key, value);
  }

  httpHandlerConfigs(): object {
    return this.fallback.httpHandlerConfigs();
  }

  destroy(): void {
    this.pool.destroy();
    this.fallback.destroy();
  }
}
