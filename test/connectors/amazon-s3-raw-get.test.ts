// The S3 connector's ranged GETs on connections of its own (connectors/amazon-s3/raw-get.ts):
// against scripted servers (plain TCP, so every byte of the answer is the test's), HTTPS
// with a certificate made now by openssl, and the connector's positional Get against a
// real store (Ceph RGW when S3_ENDPOINT is set, else the embedded s3rver).
import t, { type Test } from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { HttpRequest } from '@smithy/types';
import { RawBody, RawGetHandler } from '../../connectors/amazon-s3/raw-get.js';
import { createS3Client } from '../../connectors/amazon-s3/client.js';
import { download } from '../../connectors/amazon-s3/download.js';
import { patterned, realS3 as real, s3Store } from '../helpers/s3-store.js';

interface Scripted {
  port: number;
  /** Connections accepted so far. */
  connections: number;
  /** The request heads received, in order. */
  requests: string[];
}

/** A TCP server that answers each request head with `answer(socket, index)` (raw bytes). */
async function scripted(t: Test, answer: (socket: Socket, index: number) => void, make: (handler: (socket: Socket) => void) => Server = (h) => createServer(h)): Promise<Scripted> {
  const state: Scripted = { port: 0, connections: 0, requests: [] };
  const sockets = new Set<Socket>();
  const server = make((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let seen = '';
    socket.on('data', (chunk: Buffer) => {
      seen += chunk.toString('latin1');
      for (let end = seen.indexOf('\r\n\r\n'); end >= 0; end = seen.indexOf('\r\n\r\n')) {
        state.requests.push(seen.slice(0, end));
        seen = seen.slice(end + 4);
        answer(socket, state.requests.length - 1);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as { port: number }).port;
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return state;
}

const answer206 = (bytes: Buffer) => Buffer.concat([Buffer.from(`HTTP/1.1 206 Partial Content\r\nContent-Length: ${bytes.length}\r\nETag: "abc"\r\n\r\n`), bytes]);

function handlerFor(t: Test, options: Partial<ConstructorParameters<typeof RawGetHandler>[1]> = {}): RawGetHandler {
  const handler = new RawGetHandler(new NodeHttpHandler({}), { connectTimeoutMs: 10_000, socketTimeoutMs: 120_000, ...options });
  t.teardown(() => handler.destroy());
  return handler;
}

const ranged = (port: number, range = 'bytes=0-9', protocol = 'http:'): HttpRequest => ({ method: 'GET', protocol, hostname: '127.0.0.1', port, path: '/bucket/key', query: {}, headers: { range, 'x-amz-date': '20261203T000000Z' } });

/** Writes into a Buffer the way the runtime's sink does, and records each write's position. */
function target(size: number) {
  const bytes = Buffer.alloc(size);
  const writes: number[] = [];
  return {
    bytes,
    writes,
    write: async (chunk: Uint8Array, position: number) => {
      writes.push(position);
      bytes.set(chunk, position);
    },
  };
}

t.test('ranged GETs share one kept-alive connection; each body lands at its offset', async (t) => {
  const parts = [patterned(300_000, 1), patterned(300_000, 2), patterned(1000, 3)];
  const server = await scripted(t, (socket, i) => socket.write(answer206(parts[i]!)));
  const handler = handlerFor(t);
  const out = target(601_000);
  let at = 0;
  for (const [i, part] of parts.entries()) {
    const { response } = await handler.handle(ranged(server.port, `bytes=${at}-${at + part.length - 1}`));
    t.equal(response.statusCode, 206);
    t.equal(response.headers.etag, '"abc"', 'headers as the SDK reads them (lower-case names)');
    t.ok(response.body instanceof RawBody, `part ${i + 1}: a RawBody`);
    t.equal(await (response.body as RawBody).writeInto(out.write, at), part.length);
    at += part.length;
  }
  t.ok(out.bytes.equals(Buffer.concat(parts)), 'every byte at its place');
  t.equal(server.connections, 1, 'one connection for the three GETs');
  t.match(server.requests[1], /^GET \/bucket\/key HTTP\/1\.1\r\n/);
  t.match(server.requests[1], /\r\nrange: bytes=300000-599999(\r\n|$)/);
  t.match(server.requests[1], /\r\nhost: 127\.0\.0\.1:\d+(\r\n|$)/, 'a Host header');
});

t.test('an answer that breaks mid-body fails the write with the bytes written so far, and its connection is not reused', async (t) => {
  const body = patterned(100_000, 4);
  const server = await scripted(t, (socket, i) => {
    if (i === 0) {
      socket.write(Buffer.from(`HTTP/1.1 206 Partial Content\r\nContent-Length: 250000\r\n\r\n`));
      socket.end(body);
    } else socket.write(answer206(Buffer.from('again')));
  });
  const handler = handlerFor(t);
  const out = target(250_000);
  const { response } = await handler.handle(ranged(server.port, 'bytes=0-249999'));
  const failed = await (response.body as RawBody).writeInto(out.write, 0).then(
    () => undefined,
    (error: unknown) => error,
  );
  t.match(failed, { received: 100_000 }, 'the bytes received before the break, for a retry from there');
  t.ok(out.bytes.subarray(0, 100_000).equals(body));
  const { response: next } = await handler.handle(ranged(server.port));
  t.equal(await (next.body as RawBody).writeInto(target(5).write, 0), 5);
  t.equal(server.connections, 2, 'the next GET opened a new connection');
});

t.test('error answers read as streams, whether sized or chunked, as the SDK reads them', async (t) => {
  const xml = '<?xml version="1.0"?><Error><Code>NoSuchKey</Code><Message>none</Message></Error>';
  const server = await scripted(t, (socket, i) => {
    if (i === 0) socket.write(`HTTP/1.1 404 Not Found\r\nContent-Type: application/xml\r\nContent-Length: ${xml.length}\r\n\r\n${xml}`);
    else socket.write(`HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n${(10).toString(16)}\r\n${xml.slice(0, 10)}\r\n${(xml.length - 10).toString(16)};x=y\r\n${xml.slice(10)}\r\n0\r\n\r\n`);
  });
  const handler = handlerFor(t);
  const text = async (body: Readable) => {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  };
  const sized = (await handler.handle(ranged(server.port))).response;
  t.equal(sized.statusCode, 404);
  t.equal(await text(sized.body as Readable), xml);
  const chunked = (await handler.handle(ranged(server.port))).response;
  t.equal(chunked.statusCode, 403);
  t.equal(await text(chunked.body as Readable), xml, 'chunked: decoded');
  t.equal(server.connections, 1, 'both on one connection');
});

t.test('a store that sends nothing fails the GET with a TimeoutError after the socket timeout', async (t) => {
  const server = await scripted(t, () => undefined);
  const handler = handlerFor(t, { socketTimeoutMs: 300 });
  await t.rejects(handler.handle(ranged(server.port)), { name: 'TimeoutError', message: /the store sent nothing after 300 ms/ });
});

t.test('an aborted GET rejects with an AbortError; a closed port with ECONNREFUSED', async (t) => {
  const server = await scripted(t, () => undefined);
  const handler = handlerFor(t);
  const controller = new AbortController();
  const pending = handler.handle(ranged(server.port), { abortSignal: controller.signal });
  // event-driven: abort once the server has the request
  while (server.requests.length === 0) await new Promise((resolve) => setImmediate(resolve));
  controller.abort();
  await t.rejects(pending, { name: 'AbortError' });
  await t.rejects(handler.handle(ranged(1)), { code: 'ECONNREFUSED' }, 'port 1: nothing listens');
});

const openssl = spawnSync('openssl', ['version']).status === 0 ? {} : { skip: 'the openssl command is not installed: no certificate for the HTTPS server' };

t.test('over HTTPS the connection reads into its own buffer too', openssl, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quark-raw-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
  const bytes = patterned(2_000_000, 5);
  const server = await scripted(t, (socket) => socket.write(answer206(bytes)), (h) => createTlsServer({ key: readFileSync(join(dir, 'key.pem')), cert }, h));
  const handler = handlerFor(t, { tls: { ca: cert } });
  const out = target(bytes.length);
  const { response } = await handler.handle(ranged(server.port, 'bytes=0-1999999', 'https:'));
  t.equal(await (response.body as RawBody).writeInto(out.write, 0), bytes.length);
  t.ok(out.bytes.equals(bytes));
  const untrusted = handlerFor(t);
  await t.rejects(untrusted.handle(ranged(server.port, 'bytes=0-9', 'https:')), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }, "without the certificate's CA: refused");
});

t.test(`the connector's positional Get against ${real ? 'a real S3 server' : 'the embedded s3rver'}`, async (t) => {
  const { bucket, endpoint, credentials } = await s3Store(t, 'quark-raw-get');
  const config = { awsAccessKey: credentials.accessKeyId, awsSecretKey: credentials.secretAccessKey, region: 'us-east-1', bucket, endpoint, forcePathStyle: true };
  const { client, transport } = createS3Client(config, {}, { rawGets: true });
  t.teardown(() => {
    client.destroy();
    transport.destroy();
  });
  const bytes = patterned(5 * 1024 * 1024 + 17, 6);
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'five.bin', Body: bytes, ContentLength: bytes.length }));
  const got = await download({ client, bucket, key: 'five.bin', partSize: 1024 * 1024, concurrency: 3, positional: true, signal: new AbortController().signal });
  t.equal(got.parts, 6);
  t.notOk(got.body instanceof Readable, 'a PositionalBody, not a stream');
  const out = target(got.size);
  await (got.body as { writeTo: (sink: { write: typeof out.write }) => Promise<void> }).writeTo({ write: out.write });
  t.ok(out.bytes.equals(bytes), 'the object byte for byte');
  t.ok(out.writes.some((p, i) => i > 0 && p < out.writes[i - 1]!), 'parts written out of order, in parallel, at their offsets');
  await t.rejects(download({ client, bucket, key: 'missing.bin', partSize: 1024 * 1024, concurrency: 3, positional: true, signal: new AbortController().signal }), { name: 'NoSuchKey' }, "the store's error as the SDK reads it");
});
