// One transfer through the quark Amazon S3 connector's operations, in a worker thread of
// a runtime created in this process (as a process step would run it). Prints JSON with
// the transfer time (after a warm-up call) and this process's peak RSS (main thread +
// worker). The bench home runs one worker thread, so the warm worker is the one used.
// usage: node bench/quark-transfer.mjs <home> <token> <connection> upload|download <file> <key>
//        node bench/quark-transfer.mjs <home> <token> <connection> copy <source key> <key>
// Environment: PART_MB and CONCURRENCY for Upsert and Get (the bench's --part-mb and
// --concurrency); a copy takes the Copy operation's defaults.
import { renameSync, statSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createRuntime } from '../dist/runtime/index.js';

const [home, token, connection, direction, file, key] = process.argv.slice(2);
const runtime = await createRuntime({ home, logLevel: 'silent' });
const caller = await runtime.authenticate(token);
// warm-up: loads the connector (and the AWS SDK) in the worker and creates the client, as
// the first step of any process does once; the SDK script has its imports done too
const warm = await runtime.runOperation(caller, { connection, operation: 'query', parameters: { prefix: 'quark-bench-warm-up/' }, documents: [{}] });
await warm.dispose();
const started = performance.now();
const tuning = { concurrency: Number(process.env.CONCURRENCY ?? 4), partSizeMb: Number(process.env.PART_MB ?? 16) };
const run =
  direction === 'upload'
    ? await runtime.runOperation(caller, { connection, operation: 'upsert', parameters: { key, ...tuning }, documents: [{ body: { file, size: statSync(file).size } }] })
    : direction === 'download'
      ? await runtime.runOperation(caller, { connection, operation: 'get', parameters: { key, ...tuning }, documents: [{}] })
      : await runtime.runOperation(caller, { connection, operation: 'copy', parameters: { sourceKey: file, key }, documents: [{}] });
const result = run.results[0];
const body = result.documents?.[0]?.body;
// a download lands in the runtime's work directory (where a process's next step reads it);
// moving it to the target file is part of the timed transfer
if (direction === 'download' && body) {
  if (body.kind === 'file') renameSync(body.path, file);
  else writeFileSync(file, body.bytes);
}
const seconds = (performance.now() - started) / 1000;
const size = body?.kind === 'file' ? body.size : undefined;
await run.dispose();
await runtime.close();
if (result.status !== 'success') {
  console.error(JSON.stringify(result));
  process.exit(1);
}
console.log(JSON.stringify({ seconds, maxRssMb: process.resourceUsage().maxRSS / 1024, ...(size !== undefined ? { size } : {}) }));
