// kill -9 during a multipart Create against a real S3 server (Ceph RGW with .ci/run, or
// S3_ENDPOINT): the next start aborts the upload and removes Create's placeholder. The
// runtime reaches the store through a forwarding proxy in this test that holds back
// every part after the first while `stall` is on, so the kill lands while the upload is
// in flight whatever the machine's speed; the recovery goes through it with stall off.
import t from 'tap';
import { once } from 'node:events';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { initHome, startRuntime, until as untilValue, type Running } from '../helpers/quark.js';

const env = process.env as Record<string, string | undefined>;
const real = Boolean(env.S3_ENDPOINT && env.S3_ACCESS_KEY && env.S3_SECRET_KEY);

/** A loopback HTTP proxy to `target`; while `gate.stall`, UploadPart requests after part 1 are held, unanswered. */
async function stallingProxy(t: { teardown(fn: () => unknown): void }, target: URL) {
  const gate = { stall: true, held: [] as ServerResponse[] };
  const forward = (incoming: IncomingMessage, outgoing: ServerResponse) => {
    const url = new URL(incoming.url!, 'http://proxy');
    const part = Number(url.searchParams.get('partNumber') ?? 0);
    if (gate.stall && part > 1) {
      gate.held.push(outgoing);
      return;
    }
    // the same Host header: the client signed it
    const upstream = httpRequest({ host: target.hostname, port: target.port, method: incoming.method, path: incoming.url, headers: incoming.headers }, (answer) => {
      outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(outgoing);
    });
    upstream.on('error', () => outgoing.destroy());
    incoming.pipe(upstream);
  };
  const server = createServer(forward);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return { endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`, gate };
}

async function until(what: string, check: () => boolean | Promise<boolean>, limitMs = 120_000): Promise<void> {
  await untilValue(what, async () => ((await check()) ? true : undefined), limitMs);
}

t.test('kill -9 during a multipart Create: the next start aborts the upload and removes the placeholder', { skip: !real && 'SKIPPED: needs a real S3 server (S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY; .ci/run sets them for Ceph RGW); s3rver has no multipart abort' }, async (t) => {
  const { S3Client, CreateBucketCommand, DeleteBucketCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListPartsCommand } = await import('@aws-sdk/client-s3');
  const admin = new S3Client({ region: env.S3_REGION ?? 'us-east-1', endpoint: env.S3_ENDPOINT, forcePathStyle: true, credentials: { accessKeyId: env.S3_ACCESS_KEY!, secretAccessKey: env.S3_SECRET_KEY! } });
  const bucket = `quark-rec-${Date.now().toString(36)}`;
  await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  t.teardown(async () => {
    await admin.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
    admin.destroy();
  });
  const { endpoint, gate } = await stallingProxy(t, new URL(env.S3_ENDPOINT!));
  const { home, ownerToken } = await initHome(t);
  let rt: Running = await startRuntime(t, home);
  const config = { awsAccessKey: env.S3_ACCESS_KEY, awsSecretKey: env.S3_SECRET_KEY, region: env.S3_REGION ?? 'us-east-1', bucket, endpoint, forcePathStyle: true, multipartThresholdMb: 5 };
  const created = await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'store', connector: 'amazon-s3', config });
  t.equal(created.status, 201, JSON.stringify(created.body));

  const body = Buffer.alloc(30 * 1024 * 1024, 'k').toString('base64');
  const pending = rt.api('POST', '/api/v1/connections/store/operations/create', ownerToken, { parameters: { key: 'killed.bin', partSizeMb: 5, concurrency: 2 }, documents: [{ body, encoding: 'base64' }] }).catch(() => undefined);
  const uploadsOf = async () => ((await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).filter((u) => u.Key === 'killed.bin');
  let uploadId = '';
  await until('the first part to land', async () => {
    const [upload] = await uploadsOf();
    if (!upload) return false;
    uploadId = upload.UploadId!;
    return ((await admin.send(new ListPartsCommand({ Bucket: bucket, Key: 'killed.bin', UploadId: uploadId }))).Parts ?? []).length > 0;
  });
  await until('the next part to be held back', () => gate.held.length > 0);
  const placeholder = await admin.send(new HeadObjectCommand({ Bucket: bucket, Key: 'killed.bin' }));
  t.ok(placeholder.Metadata?.['quark-create'], 'Create\'s placeholder holds the key meanwhile');
  await rt.stop('SIGKILL');
  await pending;
  t.equal((await uploadsOf()).length, 1, 'the killed runtime left the upload on the store');

  gate.stall = false;
  for (const held of gate.held) held.destroy();
  rt = await startRuntime(t, home);
  const released = () => rt.output().split('\n').filter((l) => l.includes('was released by its connector')).length;
  await until('the recovery to be reported', () => released() === 2);
  t.match(rt.output(), /recovering 2 resource\(s\) left behind by the previous run/);
  t.same(await uploadsOf(), [], 'ListMultipartUploads shows nothing for the key');
  t.equal(await admin.send(new HeadObjectCommand({ Bucket: bucket, Key: 'killed.bin' })).then(() => 200, (error: { $metadata?: { httpStatusCode?: number } }) => error.$metadata?.httpStatusCode), 404, 'the placeholder is gone: the key is free');
  const metrics = (await rt.api<string>('GET', '/metrics')).body;
  t.match(metrics, /quark_recovered_resources_total\{connector="amazon-s3",outcome="released"\} 2/);

  const again = await rt.api('POST', '/api/v1/connections/store/operations/create', ownerToken, { parameters: { key: 'killed.bin', partSizeMb: 5 }, documents: [{ body, encoding: 'base64' }] });
  t.equal(again.body.results[0].status, 'success', 'a new Create of the key succeeds');
  await rt.api('POST', '/api/v1/connections/store/operations/delete', ownerToken, { parameters: { key: 'killed.bin' }, documents: [{}] });
});
