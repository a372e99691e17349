import S3rver from 's3rver';
import http from 'node:http';
import { mkdtempSync } from 'node:fs';
const s3 = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: mkdtempSync('/tmp/s3get/s3rver-') , configureBuckets: [{ name: 'qs3get' }]});
const { port } = await s3.run();
const r = http.request(`http://127.0.0.1:${port}/qs3get/nope.bin`, { headers: { range: 'bytes=0-10' } }, (res) => { console.log(res.statusCode, res.headers); res.resume();  }); r.end();
process.env.S3_ENDPOINT = `http://127.0.0.1:${port}`; process.env.S3_ACCESS_KEY = 'S3RVER'; process.env.S3_SECRET_KEY = 'S3RVER';
const { createS3Client } = await import('../dist/connectors/amazon-s3/client.js');
const { download } = await import('../dist/connectors/amazon-s3/download.js');
const { client } = createS3Client({ awsAccessKey: 'S3RVER', awsSecretKey: 'S3RVER', region: 'us-east-1', bucket: 'qs3get', endpoint: process.env.S3_ENDPOINT, forcePathStyle: true }, {}, { rawGets: true });
const t = setTimeout(() => { console.log('HUNG'); process.exit(1); }, 5000);
try { await download({ client, bucket: 'qs3get', key: 'nope.bin', partSize: 16 << 20, concurrency: 4, positional: true, signal: new AbortController().signal }); } catch (e) { console.log('error', e.name, e.$metadata?.httpStatusCode, e.message, e.stack); }
clearTimeout(t); client.destroy(); process.exit(0);
