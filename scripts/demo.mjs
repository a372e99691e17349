#!/usr/bin/env node
// npm run demo: the whole product on this machine, no AWS account needed. Starts an
// embedded S3-compatible server (s3rver) and a quark runtime in a temporary home, creates
// and tests an S3 connection, deploys and runs processes/s3-archive.json and
// processes/orders-no-connector.json, checks what they did, then removes everything.
// Exit code 0 when every check passed, 1 otherwise (130 on Ctrl-C, 143 on SIGTERM).
import { spawn, execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import S3rver from 's3rver';
import { S3Client, CreateBucketCommand, PutObjectCommand, ListObjectsV2Command, GetObjectCommand } from '@aws-sdk/client-s3';

// the SDK warns on Node 20 about its future Node 22 requirement: noise for a demo
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cliPath = join(root, 'dist', 'runtime', 'cli', 'main.js');
const bucket = 'demo-bucket';
const sample = JSON.parse(readFileSync(join(root, 'processes', 'orders-sample.json'), 'utf8'));
const definition = (name) => JSON.parse(readFileSync(join(root, 'processes', `${name}.json`), 'utf8'));

const say = (text = '') => process.stdout.write(text + '\n');
const heading = (n, text) => say(`\n${n}. ${text}`);
let failures = 0;
function check(ok, what) {
  if (!ok) failures++;
  say(`   ${ok ? '✔' : '✖'} ${what}`);
}
function table(rows, columns, indent = '   ') {
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)));
  const line = (cells) => indent + cells.map((cell, i) => (typeof cell === 'number' ? String(cell).padStart(widths[i]) : String(cell ?? '').padEnd(widths[i]))).join('  ').trimEnd();
  return [line(columns.map((c, i) => c.padEnd(widths[i]))), ...rows.map((r) => line(columns.map((c) => r[c])))].join('\n');
}

// ---- everything started is recorded here and undone by cleanup() ----------------------
const temp = mkdtempSync(join(tmpdir(), 'quark-demo-'));
let s3server;
let s3;
let runtime; // { child, exited, logFile, stderr }
const children = new Set(); // short-lived CLI children (quark init)
let cleaning;
let interrupted = false;

async function cleanup() {
  cleaning ??= (async () => {
    for (const child of children) child.kill('SIGKILL');
    await Promise.all([...children].map((child) => child.exited));
    if (runtime && runtime.child.exitCode === null && runtime.child.signalCode === null) {
      runtime.child.kill('SIGTERM');
      const killer = setTimeout(() => runtime.child.kill('SIGKILL'), 15_000);
      await runtime.exited;
      clearTimeout(killer);
    }
    s3?.destroy();
    await s3server?.close().catch(() => undefined);
    rmSync(temp, { recursive: true, force: true });
  })();
  return cleaning;
}
// last resort if the process ends some other way: no runtime left behind, no temp files
process.on('exit', () => {
  if (runtime && runtime.child.exitCode === null) runtime.child.kill('SIGKILL');
  rmSync(temp, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    interrupted = true;
    say(`\n${signal}: stopping the runtime and s3rver, removing ${temp}`);
    void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  });
}

// ---- the runtime and its API ----------------------------------------------------------
let baseUrl;
let token;
async function api(method, path, body) {
  const response = await fetch(`${baseUrl}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(120_000),
  });
  const text = await response.text();
  const parsed = response.headers.get('content-type')?.includes('application/json') && text ? JSON.parse(text) : text;
  if (!response.ok) {
    const e = parsed?.error;
    const problems = (e?.details?.problems ?? []).map((p) => `\n     - ${p.path || '/'}: ${p.message}`).join('');
    throw new Error(`${method} ${path}: HTTP ${response.status} ${e ? `${e.code}: ${e.message}${problems}` : text}`);
  }
  return parsed;
}

/** Runs a short CLI command; its standard output. */
function quark(args) {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [cliPath, ...args], (error, stdout, stderr) => (error ? reject(new Error(`quark ${args.join(' ')}: ${stderr || error.message}`)) : resolve(stdout)));
    child.exited = new Promise((r) => child.once('exit', r));
    children.add(child);
    void child.exited.then(() => children.delete(child));
  });
}

async function startRuntime(home) {
  const logFile = join(temp, 'runtime.log');
  const log = createWriteStream(logFile);
  const child = spawn(process.execPath, [cliPath, 'start', '--home', home, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  runtime = { child, exited, logFile, stderr: '' };
  child.stdout.pipe(log); // pino JSON lines
  const url = await new Promise((resolve, reject) => {
    child.stderr.on('data', (chunk) => {
      runtime.stderr += chunk; // the banner, and errors that are not log lines
      const match = /listening on (http\S+)/.exec(runtime.stderr);
      if (match) resolve(match[1]);
    });
    void exited.then((code) => reject(new Error(`the runtime exited with code ${code} before listening:\n${runtime.stderr}`)));
  });
  for (const started = Date.now(); Date.now() - started < 20_000; await new Promise((r) => setTimeout(r, 100))) {
    const ready = await fetch(`${url}/readyz`).then((r) => r.ok, () => false);
    if (ready) return url;
  }
  throw new Error(`the runtime at ${url} did not become ready within 20 s`);
}

const levelNames = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
async function showExecution(view) {
  say(`   status ${view.status} in ${view.durationMs} ms: ${view.documentsIn} in, ${view.documentsOut} out, ${view.documentsFailed} failed, ${view.warnings} warning(s)`);
  if (view.errorCode) say(`   error  ${view.errorCode}: ${view.errorMessage}`);
  say('\n' + table(Object.entries(view.steps).map(([step, c]) => ({ step, ...c })), ['step', 'in', 'out', 'errors']));
  const log = await api('GET', `/executions/${view.id}/log`);
  say('\n   execution log:');
  for (const line of String(log).split('\n').filter(Boolean)) {
    const { level, msg, step } = JSON.parse(line);
    say(`     ${(levelNames[level] ?? level).padEnd(5)} ${step ? `[${step}] ` : ''}${msg}`);
  }
}

async function listing(prefix) {
  const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (page.Contents ?? []).map((o) => o.Key);
}
async function showBucket(when) {
  const [inbox, archive] = [await listing('inbox/'), await listing('archive/')];
  const names = (keys, prefix) => `${String(keys.length).padStart(2)} object(s)${keys.length ? `: ${keys.map((k) => k.slice(prefix.length)).join(' ')}` : ''}`;
  say(`   ${`bucket ${when}:`.padEnd(15)} inbox/   ${names(inbox, 'inbox/')}`);
  say(`   ${''.padEnd(15)} archive/ ${names(archive, 'archive/')}`);
  return { inbox, archive };
}

// ---- the demo -------------------------------------------------------------------------
async function main() {
  if (!existsSync(cliPath)) throw new Error(`${cliPath} is missing: run "npm run build" first`);
  say('quark demo: an S3 integration end to end, on this machine only');
  say(`(temporary files in ${temp}; removed at the end)`);

  heading(1, 'Embedded S3 server (s3rver)');
  s3server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: join(temp, 's3') });
  const { port } = await s3server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  // s3rver accepts any keys; it needs the SDK's checksums only when an operation requires them
  s3 = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const seeded = new Map(sample.map((order) => [`inbox/${order.id}.json`, order]));
  for (const [key, order] of seeded) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(order), ContentType: 'application/json' }));
  say(`   ${endpoint}, bucket ${bucket}, ${seeded.size} JSON objects under inbox/`);

  heading(2, 'quark runtime');
  const home = join(temp, 'home');
  token = JSON.parse(await quark(['--json', 'init', '--home', home, '--name', 'demo', '--port', '0'])).ownerToken;
  baseUrl = await startRuntime(home);
  say(`   home ${home} (quark init), listening on ${baseUrl}, ready`);

  heading(3, 'Connection demo-s3 (amazon-s3)');
  const config = { awsAccessKey: 'S3RVER', awsSecretKey: 'S3RVER', region: 'us-east-1', bucket, endpoint, forcePathStyle: true };
  const connection = await api('POST', '/connections', { name: 'demo-s3', connector: 'amazon-s3', config });
  say(`   created ${connection.id}: endpoint ${connection.config.endpoint}, path-style, secret key ${connection.secrets['/awsSecretKey'] ? 'set (encrypted at rest)' : 'not set'}`);

  heading(4, 'Test Connection');
  const test = await api('POST', '/connections/demo-s3/test', {});
  for (const c of test.checks) say(`   ${{ ok: '✔', warning: '!', failed: '✖', skipped: '-' }[c.status] ?? c.status} ${c.title ?? c.id}: ${c.message}`);
  check(test.status === 'ok', `Test Connection ${test.status.toUpperCase()} in ${test.durationMs} ms`);

  heading(5, 'Process s3-archive: inbox/ → archive/ (processes/s3-archive.json)');
  const archiveDeployed = await api('POST', '/deployments', definition('s3-archive'));
  say(`   deployed ${archiveDeployed.process} version ${archiveDeployed.version}`);
  await showBucket('before');
  const archiveRun = await api('POST', '/executions', { process: 's3-archive', wait: true });
  await showExecution(archiveRun);
  say('');
  const after = await showBucket('after');
  check(archiveRun.status === 'complete', `status ${archiveRun.status}${archiveRun.status === 'complete' ? '' : ', expected complete'}`);
  check(archiveRun.documentsOut === seeded.size && archiveRun.documentsFailed === 0, `${seeded.size} objects moved, none failed`);
  check(after.inbox.length === 0, 'inbox/ is empty');
  const expected = [...seeded.keys()].map((k) => k.replace('inbox/', 'archive/')).sort();
  check(JSON.stringify([...after.archive].sort()) === JSON.stringify(expected), `archive/ holds ${expected.map((k) => k.slice(8)).join(', ')}`);
  const [firstKey, firstOrder] = [...seeded][0];
  const archived = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: firstKey.replace('inbox/', 'archive/') }))).Body.transformToString());
  check(archived.archivedFrom === firstKey && JSON.stringify(archived.content) === JSON.stringify(firstOrder), `archive/${firstKey.slice(6)} wraps the original: {"archivedFrom": "${archived.archivedFrom}", "execution": "${archived.execution}", "content": {…}}`);

  heading(6, 'Process orders-no-connector with processes/orders-sample.json');
  const ordersDeployed = await api('POST', '/deployments', definition('orders-no-connector'));
  say(`   deployed ${ordersDeployed.process} version ${ordersDeployed.version}; input: one document, a JSON array of ${sample.length} orders`);
  const ordersRun = await api('POST', '/executions', { process: 'orders-no-connector', wait: true, documents: [{ body: JSON.stringify(sample) }] });
  await showExecution(ordersRun);
  const output = (ordersRun.output ?? []).map((d) => ({ ...JSON.parse(Buffer.from(d.body, 'base64').toString('utf8')), properties: d.properties }));
  say('\n   output documents: body fields, and the document properties set by tag-order');
  const shown = (properties) => Object.entries(properties).map(([k, v]) => `${k}=${v}`).join(' ');
  say(table(output.map((o) => ({ id: o.id, customer: o.customer, total: o.total, properties: shown(o.properties) })), ['id', 'customer', 'total', 'properties'], '     '));
  const large = sample.filter((o) => o.items.reduce((sum, i) => sum + i.price * i.qty, 0) > 100).length;
  say('');
  const ordersExpected = large > 0 ? 'complete-with-warnings' : 'complete';
  check(ordersRun.status === ordersExpected, `status ${ordersRun.status}${ordersRun.status === ordersExpected ? ' (as expected: the warning notes on large orders)' : `, expected ${ordersExpected}`}`);
  check(ordersRun.steps['split-orders']?.out === sample.length && output.length === sample.length, `split into ${sample.length} orders, ${output.length} came out`);
  check(ordersRun.steps['notify-large']?.in === large && ordersRun.steps['notify-small']?.in === sample.length - large, `${large} large (total > 100) and ${sample.length - large} small`);
}

let exitCode = 0;
try {
  await main();
  say(failures === 0 ? '\nDemo OK: every check passed. To run the examples by hand, see processes/README.md.' : `\nDemo FAILED: ${failures} check(s) did not pass.`);
  if (failures > 0) exitCode = 1;
} catch (error) {
  exitCode = 1;
  if (interrupted) await new Promise(() => undefined); // the signal handler cleans up and exits
  say(`\nDemo FAILED: ${error instanceof Error ? error.message : String(error)}`);
  if (runtime && existsSync(runtime.logFile)) {
    // the runtime's own warnings and errors, and what it wrote to stderr after its banner
    const level = (line) => { try { return JSON.parse(line).level; } catch { return 0; } };
    const logged = readFileSync(runtime.logFile, 'utf8').split('\n').filter((l) => level(l) >= 40);
    const stderr = baseUrl === undefined ? [] : runtime.stderr.split('\n').filter((l) => l && !/^(quark \d|home: |Log in: )/.test(l));
    const tail = [...logged, ...stderr].slice(-10);
    if (tail.length > 0) say(`   runtime log, last warnings and errors:\n${tail.map((l) => `     ${l}`).join('\n')}`);
  }
} finally {
  say('\nCleaning up: stopping the runtime and s3rver, removing the temporary files.');
  await cleanup();
}
process.exit(exitCode);
