/**
 * The streamed answer of POST /api/v1/executions (Accept: application/x-ndjson): read line
 * by line as a client would, through a real runtime. The first document is read while the
 * execution still runs (its second path waits for a file the test writes only then).
 */
import t from 'tap';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixturePlugins, initHome, startRuntime, tempDir, until } from '../helpers/quark.js';

/** The lines of a streamed answer, one at a time, as they arrive. */
function lineReader(body: ReadableStream<Uint8Array>) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  const longest = { chars: 0 };
  return {
    longest,
    async next(): Promise<any | undefined> {
      for (;;) {
        const end = buffered.indexOf('\n');
        if (end >= 0) {
          const line = buffered.slice(0, end);
          buffered = buffered.slice(end + 1);
          longest.chars = Math.max(longest.chars, line.length);
          return JSON.parse(line);
        }
        const { value, done } = await reader.read();
        if (done) return undefined;
        buffered += decoder.decode(value, { stream: true });
      }
    },
    async rest(): Promise<any[]> {
      const lines: any[] = [];
      for (let line = await this.next(); line !== undefined; line = await this.next()) lines.push(line);
      return lines;
    },
    cancel: () => reader.cancel(),
  };
}

async function kitRuntime(t: any, limits: Record<string, unknown> = {}) {
  const { home, ownerToken } = await initHome(t, { config: { plugins: { paths: [join(fixturePlugins, 'process-kit')] }, limits } });
  const rt = await startRuntime(t, home);
  const api = (method: string, path: string, body?: unknown) => rt.api(method, `/api/v1${path}`, ownerToken, body);
  const streamed = (body: unknown, signal?: AbortSignal) =>
    fetch(`${rt.url}/api/v1/executions`, { method: 'POST', headers: { authorization: `Bearer ${ownerToken}`, 'content-type': 'application/json', accept: 'application/x-ndjson' }, body: JSON.stringify(body), ...(signal ? { signal } : {}) });
  return { rt, api, streamed };
}

/** The runtime with default limits that most tests here share (one per file; each makes its own process ids), with the connection "kit". */
let sharedRuntime: ReturnType<typeof kitRuntime> | undefined;
function defaultRuntime() {
  sharedRuntime ??= (async () => {
    const made = await kitRuntime(t);
    const kit = await made.api('POST', '/connections', { name: 'kit', connector: 'process-kit', config: {} });
    if (kit.status !== 201) throw new Error(`the connection "kit" was not made: ${JSON.stringify(kit.body)}`);
    return made;
  })();
  return sharedRuntime;
}

/** Two paths: `quick` ends at once; `held` sleeps until the release file exists. */
const twoPaths = (release: string) => ({
  id: 'two-paths',
  name: 'two paths',
  start: { kind: 'documents', next: 'fork' },
  steps: [
    { id: 'fork', kind: 'branch', paths: ['quick', 'held'] },
    { id: 'quick', kind: 'map', expression: '{"path": "quick", "n": n}' },
    { id: 'held', kind: 'operation', connection: 'kit', operation: 'sleep', parameters: { ms: 600_000, release }, next: 'after' },
    { id: 'after', kind: 'map', expression: '{"path": "held", "n": n}' },
  ],
});

t.test('the streamed answer hands over the first document while the execution still runs, then the rest and the end', async (t) => {
  const { api, streamed } = await defaultRuntime();
  const release = join(tempDir(t), 'release');
  t.equal((await api('POST', '/deployments', twoPaths(release))).status, 201);

  const response = await streamed({ process: 'two-paths', documents: [{ body: '{"n": 1}', properties: { who: 'first' } }] });
  t.equal(response.status, 200);
  t.match(response.headers.get('content-type'), /^application\/x-ndjson/);
  const lines = lineReader(response.body!);
  const first = await lines.next();
  t.equal(first.type, 'execution');
  t.equal(first.execution.status, 'in-process', 'the first line is the execution as it starts');
  const id = first.execution.id;

  const quick = await lines.next();
  t.match(quick, { type: 'document', document: 0, properties: { who: 'first' }, encoding: 'base64' });
  t.same(JSON.parse(Buffer.from(quick.body, 'base64').toString()), { path: 'quick', n: 1 });
  t.equal((await api('GET', `/executions/${id}`)).body.status, 'in-process', 'the first document came while the execution still runs');
  t.notOk(existsSync(release), 'and before the held path was let go');

  writeFileSync(release, 'go');
  const rest = await lines.rest();
  t.equal(rest.length, 2, 'the held path\'s document, then the end');
  t.match(rest[0], { type: 'document', document: 1 });
  t.same(JSON.parse(Buffer.from(rest[0].body, 'base64').toString()), { path: 'held', n: 1 });
  t.match(rest[1], { type: 'end', execution: { id, status: 'complete', documentsOut: 2 }, documents: { streamed: 2, dropped: 0 } });
  t.notOk('output' in rest[1].execution, 'no output list at the end: the documents came as lines');
});

t.test('a large spilled body comes in parts read from its file; their base64 joins into the body', async (t) => {
  const { api, streamed } = await kitRuntime(t, { spillBytes: 65536 });
  t.equal((await api('POST', '/connections', { name: 'kit', connector: 'process-kit', config: {} })).status, 201);
  const definition = { id: 'copy', name: 'copy', start: { kind: 'documents', next: 'echo' }, steps: [{ id: 'echo', kind: 'operation', connection: 'kit', operation: 'echo', parameters: { tag: 'big' } }] };
  t.equal((await api('POST', '/deployments', definition)).status, 201);
  // 2.5 MiB that differ in every KiB, so a part out of place shows
  const body = Buffer.concat(Array.from({ length: 2560 }, (_, i) => Buffer.alloc(1024, i % 251)));
  const response = await streamed({ process: 'copy', documents: [{ body: body.toString('base64'), encoding: 'base64' }] });
  const lines = lineReader(response.body!);
  const all = await lines.rest();
  const head = all.find((l) => l.type === 'document');
  t.match(head, { document: 0, size: body.length, encoding: 'base64', parts: 4, properties: { 'echo.tag': 'big' } });
  t.notOk('body' in head, 'the document line itself carries no body');
  const parts = all.filter((l) => l.type === 'part');
  t.same(parts.map((p) => p.part), [0, 1, 2, 3]);
  t.ok(Buffer.from(parts.map((p) => p.body).join(''), 'base64').equals(body), 'the parts joined are the body');
  t.ok(lines.longest.chars < 1.1 * 1024 * 1024, `no line is much over 1 MiB (longest ${lines.longest.chars} characters)`);
  t.match(all.at(-1), { type: 'end', execution: { status: 'complete' }, documents: { streamed: 1 } });
});

t.test('a client that disconnects mid-stream does not fail the execution: it ends complete and frees its slot', async (t) => {
  const { api, streamed } = await kitRuntime(t, { maxRunningExecutions: 1 });
  t.equal((await api('POST', '/connections', { name: 'kit', connector: 'process-kit', config: {} })).status, 201);
  const release = join(tempDir(t), 'release');
  t.equal((await api('POST', '/deployments', twoPaths(release))).status, 201);
  const controller = new AbortController();
  const response = await streamed({ process: 'two-paths', documents: [{ body: '{"n": 2}' }] }, controller.signal);
  const lines = lineReader(response.body!);
  const id = (await lines.next()).execution.id;
  t.equal((await lines.next()).type, 'document');
  controller.abort();
  await lines.cancel().catch(() => undefined);
  writeFileSync(release, 'go');
  const view = await until('the execution to end', async () => {
    const v = (await api('GET', `/executions/${id}`)).body;
    return ['queued', 'in-process'].includes(v.status) ? undefined : v;
  });
  t.equal(view.status, 'complete', 'it ran to its end without its reader');
  t.equal(view.documentsOut, 2);
  await until('its slot to be free', async () => ((await api('GET', '/runtime')).body.executions.running === 0 ? true : undefined));
  const next = await api('POST', '/executions', { process: 'two-paths', wait: true, documents: [] });
  t.equal(next.status, 200, 'the one slot runs the next execution');
});

t.test('refusals before the execution exists are ordinary JSON errors; wait: false with the stream is refused', async (t) => {
  const { streamed } = await defaultRuntime();
  const missing = await streamed({ process: 'nope' });
  t.equal(missing.status, 404);
  t.match(missing.headers.get('content-type'), /^application\/json/);
  t.equal(((await missing.json()) as any).error.code, 'QUARK_ERR_PROCESS_NOT_FOUND');
  const noWait = await streamed({ process: 'nope', wait: false });
  t.equal(noWait.status, 400);
  const error = ((await noWait.json()) as any).error;
  t.equal(error.code, 'QUARK_ERR_API_INVALID_REQUEST');
  t.equal(error.details.problems[0].path, '/body/wait');
});

t.test('secret values of the connections an execution used are nowhere in its stream', async (t) => {
  const { api, streamed } = await defaultRuntime();
  const secret = 'tok-streamed-secret-4711';
  t.equal((await api('POST', '/connections', { name: 'kit-with-token', connector: 'process-kit', config: { token: secret } })).status, 201);
  const definition = {
    id: 'leaky',
    name: 'leaky',
    start: { kind: 'documents', next: 'echo' },
    steps: [
      { id: 'echo', kind: 'operation', connection: 'kit-with-token', operation: 'echo', parameters: { tag: secret } },
    ],
  };
  t.equal((await api('POST', '/deployments', definition)).status, 201);
  const response = await streamed({ process: 'leaky', documents: [{ body: '{"n": 1}' }, { body: '{"n": 2}' }] });
  const text = await response.text();
  t.notOk(text.includes(secret), 'the secret is not in any line');
  const lines = text.trim().split('\n').map((l) => JSON.parse(l));
  t.match(lines.find((l) => l.type === 'document'), { properties: { 'echo.tag': '[redacted]' } });
  t.match(lines.at(-1), { type: 'end', execution: { status: 'complete' }, documents: { streamed: 2 } });
});
