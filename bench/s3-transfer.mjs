#!/usr/bin/env node
// bench/s3-transfer: upload, download and copy (inside the store) files through the quark
// Amazon S3 connector (its operations, in a worker), side by side in one run with a raw
// @aws-sdk/lib-storage script (not for copies), `aws s3 cp` and `rclone copyto` (s3:// to
// s3://: server-side), against one local endpoint: Ceph RGW when
// S3_ENDPOINT and keys are set (source ../shared/tools/ceph-s3 DIR/s3.env), else an
// embedded s3rver. Same part size (--part-mb, default 16) and concurrency (--concurrency,
// default 4) everywhere: the connector's defaults. Reports the
// median wall time of RUNS runs (default 5), each command's fixed cost (the same command
// on a 1-byte object) and the net transfer time, ratios to the SDK script and to the AWS
// CLI, and peak RSS.
//   node bench/s3-transfer.mjs [--sizes 100,1024] [--runs 5] [--part-mb 16] [--concurrency 4]
//     [--directions upload,download,copy] [--peers quark,aws,...] [--note 'about the server'] [--write bench/RESULTS.md]
// --directions without upload still uploads once (not recorded): the other directions need the objects.
// --peers keeps the peers whose names start with one of the words.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { once } from 'node:events';
import { S3Client, CreateBucketCommand, DeleteObjectsCommand } from '@aws-sdk/client-s3';
import { prependResults } from './results.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const { values } = parseArgs({ options: { sizes: { type: 'string', default: '100,1024' }, runs: { type: 'string', default: '5' }, 'part-mb': { type: 'string', default: '16' }, note: { type: 'string' }, concurrency: { type: 'string', default: '4' }, write: { type: 'string' }, directions: { type: 'string', default: 'upload,download,copy' }, peers: { type: 'string' } } });
const directions = values.directions.split(',');
const unknownDirection = directions.find((d) => !['upload', 'download', 'copy'].includes(d));
if (unknownDirection) throw new Error(`--directions: "${unknownDirection}" is not upload, download or copy`);
// the connector's defaults (16 MiB parts, 4 at once), given to every peer
const partMb = Number(values['part-mb']);
const concurrency = Number(values.concurrency);
const sizesMb = values.sizes.split(',').map(Number);
const runs = Number(values.runs);
const work = mkdtempSync(join(tmpdir(), 'quark-bench-'));
const cleanup = [];
process.on('exit', () => { for (const f of cleanup.reverse()) try { f(); } catch {} rmSync(work, { recursive: true, force: true }); });

let server = 'Ceph RGW';
if (!process.env.S3_ENDPOINT) {
  const { default: S3rver } = await import('s3rver');
  const s3 = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: join(work, 's3rver') });
  const { port } = await s3.run();
  cleanup.push(() => s3.close());
  Object.assign(process.env, { S3_ENDPOINT: `http://127.0.0.1:${port}`, S3_ACCESS_KEY: 'S3RVER', S3_SECRET_KEY: 'S3RVER' });
  server = 's3rver (embedded)';
}
const env = { ...process.env, PART_MB: String(partMb), CONCURRENCY: String(concurrency), AWS_ACCESS_KEY_ID: process.env.S3_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: process.env.S3_SECRET_KEY, AWS_DEFAULT_REGION: 'us-east-1' };
const bucket = `quark-bench-${Date.now().toString(36)}`;
const admin = new S3Client({ region: 'us-east-1', endpoint: process.env.S3_ENDPOINT, forcePathStyle: true, credentials: { accessKeyId: process.env.S3_ACCESS_KEY, secretAccessKey: process.env.S3_SECRET_KEY } });
await admin.send(new CreateBucketCommand({ Bucket: bucket }));

// the quark side: a runtime home with one connection
const home = join(work, 'home');
const init = JSON.parse(execFileSync(process.execPath, [join(root, 'dist/runtime/cli/main.js'), '--json', 'init', '--home', home], { encoding: 'utf8' }));
{
  const file = join(home, 'config.json');
  const config = JSON.parse(readFileSync(file, 'utf8'));
  config.limits.workerThreads = 1;
  writeFileSync(file, JSON.stringify(config, null, 2));
}
{
  const { createRuntime } = await import('../dist/runtime/index.js');
  const rt = await createRuntime({ home, logLevel: 'silent' });
  await rt.connections.create(await rt.authenticate(init.ownerToken), { name: 'bench', connector: 'amazon-s3', config: { awsAccessKey: process.env.S3_ACCESS_KEY, awsSecretKey: process.env.S3_SECRET_KEY, region: 'us-east-1', bucket, endpoint: process.env.S3_ENDPOINT, forcePathStyle: true } });
  await rt.close();
}

// aws CLI and rclone configured for the same part size and concurrency
const awsConfig = join(work, 'aws.config');
// (the AWS CLI reads "MB" as MiB)
writeFileSync(awsConfig, `[default]\nregion = us-east-1\ns3 =\n    multipart_chunksize = ${partMb}MB\n    multipart_threshold = 100MB\n    max_concurrent_requests = ${concurrency}\n    addressing_style = path\n`);
const rcloneEnv = { AWS_CA_BUNDLE: undefined, RCLONE_CONFIG_BENCH_TYPE: 's3', RCLONE_CONFIG_BENCH_PROVIDER: 'Other', RCLONE_CONFIG_BENCH_ENDPOINT: process.env.S3_ENDPOINT, RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: process.env.S3_ACCESS_KEY, RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: process.env.S3_SECRET_KEY, RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: 'true', RCLONE_CONFIG_BENCH_REGION: 'us-east-1' };
const have = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const timeBin = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

// in a copy, `file` is the source key (the first peer's upload) and `key` the copy's
const ends = (dir, file, key, local, remote) => (dir === 'upload' ? [local(file), remote(key)] : dir === 'download' ? [remote(key), local(file)] : [remote(file), remote(key)]);
const allPeers = [
  { name: 'quark connector', cmd: (dir, file, key) => [process.execPath, [join(here, 'quark-transfer.mjs'), home, init.ownerToken, 'bench', dir, file, key]] },
  { name: 'raw SDK (lib-storage)', copies: false, cmd: (dir, file, key) => [process.execPath, [join(here, 'sdk-transfer.mjs'), dir, file, bucket, key]] },
  ...(have('aws') ? [{ name: 'aws s3 cp', env: { AWS_CONFIG_FILE: awsConfig, AWS_SHARED_CREDENTIALS_FILE: '/dev/null' }, cmd: (dir, file, key) => ['aws', ['--endpoint-url', process.env.S3_ENDPOINT, 's3', 'cp', '--only-show-errors', ...ends(dir, file, key, (f) => f, (k) => `s3://${bucket}/${k}`)]] }] : []),
  ...(have('rclone') ? [{ name: 'rclone copyto', env: rcloneEnv, cmd: (dir, file, key) => ['rclone', ['copyto', '--s3-chunk-size', `${partMb}M`, '--s3-upload-concurrency', String(concurrency), '--s3-upload-cutoff', '100M', '--s3-disable-checksum', '--ignore-times', ...ends(dir, file, key, (f) => f, (k) => `bench:${bucket}/${k}`)]] }] : []),
];
const peers = values.peers ? allPeers.filter((p) => values.peers.split(',').some((name) => p.name.startsWith(name))) : allPeers;
if (peers.length === 0) throw new Error(`--peers: none of ${allPeers.map((p) => p.name).join(', ')} starts with ${values.peers}`);

/** The object key of a peer's copy: one prefix per peer. */
const keyOf = (peer, name) => `${peer.name.replace(/\W+/g, '-')}/${name}`;

// asynchronous: the embedded s3rver (no S3_ENDPOINT) answers from this process's event loop
async function measure(peer, dir, file, key) {
  const [cmd, args] = peer.cmd(dir, file, key);
  const full = timeBin ? [timeBin, ['-f', 'QUARK_BENCH %e %M %U %S', cmd, ...args]] : [cmd, args];
  const started = process.hrtime.bigint();
  const merged = { ...env, ...(peer.env ?? {}) };
  for (const [k, v] of Object.entries(merged)) if (v === undefined) delete merged[k];
  const child = spawn(full[0], full[1], { env: merged });
  const r = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (d) => (r.stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (r.stderr += d));
  [r.status] = await once(child, 'close');
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.status !== 0) throw new Error(`${peer.name} ${dir} failed: ${r.stderr.slice(-2000)}`);
  const m = /QUARK_BENCH ([\d.]+) (\d+) ([\d.]+) ([\d.]+)/.exec(r.stderr);
  const inner = /\{"seconds":([\d.]+)/.exec(r.stdout);
  return { seconds, transfer: inner ? Number(inner[1]) : undefined, maxRssMb: m ? Number(m[2]) / 1024 : undefined, cpu: m ? Number(m[3]) + Number(m[4]) : undefined };
}

function makeFile(mb) {
  const file = join(work, `data-${mb}.bin`);
  const out = createWriteStream(file);
  return new Promise((resolve) => {
    let left = mb;
    const write = () => { while (left > 0) { left--; if (!out.write(randomBytes(1024 * 1024))) return out.once('drain', write); } out.end(resolve); };
    write();
  }).then(() => file);
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
// each command's fixed cost (process start, imports, for quark a runtime's start and its
// warm-up call): the same command on a 1-byte object, so that "net" = command − start is
// the transfer's own time for every peer alike
const tiny = join(work, 'tiny.bin');
writeFileSync(tiny, 'x');
const rows = [];
for (const mb of sizesMb) {
  const source = await makeFile(mb);
  // every direction needs the objects an upload leaves
  for (const dir of ['upload', ...directions.filter((d) => d !== 'upload')]) {
    const these = peers.filter((p) => dir !== 'copy' || p.copies !== false);
    const samples = new Map(these.map((p) => [p.name, []]));
    const starts = new Map(these.map((p) => [p.name, []]));
    for (let run = 0; run < (dir === 'upload' && !directions.includes('upload') ? 1 : runs); run++) {
      // rotate the order each run so no peer always goes first (cold caches, GC in RGW)
      const order = these.map((_, i) => these[(i + run) % these.length]);
      for (const peer of order) {
        const key = keyOf(peer, `${mb}.${dir === 'copy' ? 'copy' : 'bin'}`);
        const file = dir === 'upload' ? source : dir === 'download' ? join(work, `down-${mb}.bin`) : keyOf(peers[0], `${mb}.bin`);
        const sample = await measure(peer, dir, file, key);
        if (dir === 'download') {
          if (statSync(file).size !== mb * 1024 * 1024) throw new Error(`${peer.name} downloaded ${statSync(file).size} bytes`);
          rmSync(file);
        }
        samples.get(peer.name).push(sample);
        const tinyKey = keyOf(peer, 'tiny.bin');
        starts.get(peer.name).push(await measure(peer, dir, dir === 'upload' ? tiny : dir === 'download' ? join(work, 'down-tiny.bin') : keyOf(peers[0], 'tiny.bin'), dir === 'copy' ? keyOf(peer, 'tiny.copy') : tinyKey));
        process.stderr.write(`${mb} MiB ${dir} ${peer.name}: ${sample.seconds.toFixed(2)} s (start ${starts.get(peer.name).at(-1).seconds.toFixed(2)} s), CPU ${sample.cpu?.toFixed(2) ?? '?'} s, ${sample.maxRssMb?.toFixed(0) ?? '?'} MB\n`);
      }
    }
    if (dir === 'upload' && !directions.includes('upload')) continue;
    const sdkList = samples.get('raw SDK (lib-storage)');
    const sdk = sdkList ? median(sdkList.map((s) => s.seconds)) : undefined;
    const sdkTransfer = sdkList ? median(sdkList.map((s) => s.transfer)) : undefined;
    const awsList = samples.get('aws s3 cp');
    const awsNet = awsList ? median(awsList.map((s) => s.seconds)) - median(starts.get('aws s3 cp').map((s) => s.seconds)) : undefined;
    for (const [name, list] of samples) {
      const wall = median(list.map((s) => s.seconds));
      const start = median(starts.get(name).map((s) => s.seconds));
      // CPU time (user + system) of the whole command, minus that of its 1-byte run
      const netCpu = list[0].cpu === undefined ? undefined : median(list.map((s) => s.cpu)) - median(starts.get(name).map((s) => s.cpu));
      const transfer = list[0].transfer === undefined ? undefined : median(list.map((s) => s.transfer));
      rows.push({ mb, dir, name, wall, ratio: sdk === undefined ? undefined : wall / sdk, start, netCpu, net: wall - start, netVsAws: awsNet === undefined ? undefined : (wall - start) / awsNet, transfer, transferRatio: transfer === undefined || sdkTransfer === undefined ? undefined : transfer / sdkTransfer, rss: Math.max(...list.map((s) => s.maxRssMb ?? 0)), spread: [Math.min(...list.map((s) => s.seconds)), Math.max(...list.map((s) => s.seconds))] });
    }
  }
  rmSync(source);
  // free the store's space for the next size (Ceph's bluestore file is 20 GB)
  await admin.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: peers.flatMap((p) => [{ Key: keyOf(p, `${mb}.bin`) }, { Key: keyOf(p, `${mb}.copy`) }]) } }));
}

const cpu = cpus()[0]?.model ?? 'unknown CPU';
let commit = 'unknown commit';
try {
  commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
} catch {
  /* not a git checkout */
}
const lines = [
  `## ${new Date().toISOString().slice(0, 10)} — s3-transfer against ${server}${values.note ? ` (${values.note})` : ''} (code at ${commit}; ${runs} runs)`,
  '',
  `Machine: ${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}. Part size ${partMb} MiB, ${concurrency} parts at once for every peer (a copy: the connector's Copy with its defaults, CopyObject up to 5 GiB; aws s3 cp above its 100 MB threshold in UploadPartCopy parts of that size; rclone's server-side copy, CopyObject below its 4.6 GiB cutoff); ${runs} runs each, order rotated per run. "command s": wall time of the whole command (process start, imports and for quark the runtime's start included), median [min–max]; "start s": the same command on a 1-byte object (its fixed cost), median; "net s" = command − start, the transfer's own time measured alike for every peer, and its ratio to aws s3 cp's; "net CPU s": CPU time (user + system) of the command minus that of its 1-byte run, median — the server (RGW and its OSD) shares these 2 cores, so a client's CPU is taken from the server's; "transfer s": the transfer alone as the two Node peers time it in-process (quark after a warm-up call that loads the connector in its worker; the SDK script after its imports); ratios = median / raw SDK median in the same run; peak RSS of the whole process (for quark: main thread and worker).`,
  '',
  '| size | direction | peer | command s | [min–max] | vs raw SDK | start s | net s | net vs aws | net CPU s | transfer s | vs raw SDK | peak RSS MB |',
  '| ---: | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map((r) => `| ${r.mb} MiB | ${r.dir} | ${r.name} | ${r.wall.toFixed(2)} | ${r.spread.map((x) => x.toFixed(2)).join('–')} | ${r.ratio?.toFixed(2) ?? '–'} | ${r.start.toFixed(2)} | ${r.net.toFixed(2)} | ${r.netVsAws?.toFixed(2) ?? '–'} | ${r.netCpu?.toFixed(2) ?? '–'} | ${r.transfer?.toFixed(2) ?? '–'} | ${r.transferRatio?.toFixed(2) ?? '–'} | ${r.rss ? r.rss.toFixed(0) : '?'} |`),
  '',
];
const text = lines.join('\n');
console.log(text);
if (values.write) prependResults(values.write, text);
admin.destroy();
process.exit(0);
