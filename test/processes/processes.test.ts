import t from 'tap';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, fixturePlugins, initHome, startRuntime, tempDir } from '../helpers/quark.js';

/** A definition with the given steps, starting with documents at the first step. */
const process = (id: string, steps: unknown[], extra: Record<string, unknown> = {}) => ({
  id,
  name: `Process ${id}`,
  start: { kind: 'documents', next: (steps[0] as { id: string } | undefined)?.id },
  steps,
  ...extra,
});

const json = (value: unknown) => ({ body: JSON.stringify(value) });
const bodies = (view: any) => (view.output ?? []).map((d: any) => Buffer.from(d.body, 'base64').toString('utf8'));

t.test('processes: deploy, run and read what happened', async (t) => {
  const markers = tempDir(t, 'quark-markers-');
  const { home, ownerToken } = await initHome(t, { config: { plugins: { paths: [join(fixturePlugins, 'process-kit')] } } });
  const rt = await startRuntime(t, home);
  const api = (method: string, path: string, body?: unknown) => rt.api(method, `/api/v1${path}`, ownerToken, body);
  const run = async (processId: string, documents: unknown[] = [], extra: Record<string, unknown> = {}) => {
    const { status, body } = await api('POST', '/executions', { process: processId, documents, wait: true, ...extra });
    t.equal(status, 200, `execution of ${processId} answered`);
    return body;
  };
  const deploy = async (definition: unknown) => {
    const { status, body } = await api('POST', '/deployments', definition);
    if (status !== 201) throw new Error(`deploy failed: ${JSON.stringify(body)}`);
    return body;
  };
  t.equal((await api('POST', '/connections', { name: 'kit', connector: 'process-kit', config: { token: 'kit-secret-value-1' } })).status, 201);

  t.test('deploy reports every problem at once, with paths, and deploys nothing', async (t) => {
    const file = join(tempDir(t), 'bad.json');
    writeFileSync(
      file,
      JSON.stringify(
        process('bad', [
          { id: 'a', kind: 'map', expression: '$sum(', next: 'b' },
          { id: 'b', kind: 'operation', connection: 'nope', operation: 'echo', next: 'c' },
          { id: 'c', kind: 'operation', connection: 'kit', operation: 'teleport', next: 'd' },
          { id: 'd', kind: 'operation', connection: 'kit', operation: 'echo', parameters: { times: 99 }, next: 'e' },
          { id: 'e', kind: 'decision', condition: 'x > 1', ifTrue: 'a', ifFalse: 'missing' },
          { id: 'lonely', kind: 'stop' },
          { id: 'd', kind: 'stop' },
          { id: 'f', kind: 'process-call', process: 'not-deployed' },
        ]),
      ),
    );
    const result = await cli(['--json', 'deploy', file], rt.as(ownerToken));
    t.equal(result.code, 2, 'exit code 2: invalid input');
    const error = JSON.parse(result.stderr).error;
    t.equal(error.code, 'QUARK_ERR_PROCESS_INVALID');
    const problems = Object.fromEntries(error.details.problems.map((p: any) => [p.path, p.message]));
    t.match(problems['/steps/0/expression'], /not a valid JSONata expression/);
    t.match(problems['/steps/1/connection'], /no connection "nope"/);
    t.match(problems['/steps/2/operation'], /no operation "teleport"/);
    t.match(problems['/steps/3/parameters/times'], /^"[^"]+" must be at most 10$/);
    t.match(problems['/steps/3/parameters/tag'], /is required/);
    t.match(problems['/steps/4/ifFalse'], /not in this process/);
    t.match(problems['/steps/6/id'], /duplicates the id of \/steps\/3/);
    t.match(problems['/steps/5'], /not reachable/);
    t.match(problems['/steps/7/process'], /no deployed process "not-deployed"/);
    t.ok(error.details.problems.some((p: any) => /cycle/.test(p.message)), 'the cycle a → … → e → a is reported');
    const human = await cli(['deploy', file], rt.as(ownerToken));
    t.match(human.stderr, /\/steps\/3\/parameters\/times: "[^"]+" must be at most 10/, 'the CLI lists the problems with their paths');
    t.same((await api('GET', '/deployments')).body.deployments, [], 'nothing was deployed');

    const schema = await api('POST', '/deployments', { id: 'Bad Id!', name: 'x', start: { kind: 'sometimes' }, steps: [{ id: 's', kind: 'map' }] });
    t.equal(schema.status, 400);
    const paths = schema.body.error.details.problems.map((p: any) => p.path);
    t.ok(paths.includes('/id') && paths.includes('/start/kind') && paths.includes('/steps/0/expression'), `schema problems have paths: ${paths.join(', ')}`);
  });

  t.test('split, map, set properties, decision, notify, route, combine: documents and counts', async (t) => {
    await deploy(
      process('orders', [
        { id: 'split', kind: 'split', mode: 'json-array', path: 'orders', next: 'total' },
        { id: 'total', kind: 'map', expression: '$merge([$, {"total": $sum(items.(price * qty))}])', next: 'props' },
        { id: 'props', kind: 'set-properties', document: { customer: { $expr: 'customer' }, channel: 'web' }, process: { seen: { $expr: '$process.seen + 1' } }, next: 'big' },
        { id: 'big', kind: 'decision', condition: 'total > 100', ifTrue: 'warn', ifFalse: 'region' },
        { id: 'warn', kind: 'notify', level: 'warning', message: { $expr: '"large order from " & $properties.customer & " of " & total' } },
        { id: 'region', kind: 'route', value: 'region', routes: [{ equals: 'eu', next: 'eu-lines' }], default: 'other' },
        { id: 'eu-lines', kind: 'map', expression: 'customer & ";" & total', next: 'eu-file' },
        { id: 'eu-file', kind: 'combine', mode: 'lines' },
        { id: 'other', kind: 'combine', mode: 'json-array' },
      ], { properties: { seen: { default: 0 } } }),
    );
    const orders = [
      { customer: 'ada', region: 'eu', items: [{ price: 60, qty: 2 }] },
      { customer: 'bob', region: 'eu', items: [{ price: 5, qty: 1 }] },
      { customer: 'cy', region: 'us', items: [{ price: 7, qty: 3 }] },
      { customer: 'dee', region: 'eu', items: [{ price: 1, qty: 1 }] },
    ];
    const view = await run('orders', [json({ orders })]);
    t.equal(view.status, 'complete-with-warnings', 'a warning note makes the execution complete with warnings');
    t.same(view.steps.split, { in: 1, out: 4, errors: 0 });
    t.same(view.steps.big, { in: 4, out: 4, errors: 0 });
    t.same(view.steps.warn, { in: 1, out: 1, errors: 0 });
    t.same(view.steps['eu-file'], { in: 2, out: 1, errors: 0 });
    t.equal(view.documentsIn, 1);
    t.equal(view.documentsOut, 3, 'the large order, the EU file and the other file end their paths');
    const out = bodies(view);
    t.ok(out.includes('bob;5\ndee;1\n'), 'EU orders combined as lines, in order');
    t.ok(out.includes(JSON.stringify([{ customer: 'cy', region: 'us', items: [{ price: 7, qty: 3 }], total: 21 }])), 'others combined as a JSON array');
    const large = view.output.find((d: any) => d.properties.customer === 'ada');
    t.same(large.properties, { customer: 'ada', channel: 'web' }, 'document properties travel with the document');
    const log = await rt.api('GET', `/api/v1/executions/${view.id}/log`, ownerToken);
    t.match(log.body, /large order from ada of 120/, 'the note is in the execution log');

    const listed = await cli(['--json', 'executions', 'list', '--process', 'orders'], rt.as(ownerToken));
    t.equal(listed.json().executions[0].id, view.id, '--json prints the API\'s {executions: [...]}');
    const shown = await cli(['executions', 'show', view.id], rt.as(ownerToken));
    t.match(shown.stdout, /status\s+complete-with-warnings/);
    t.match(shown.stdout, /eu-file\s+2\s+1\s+0/, 'per-step counts in the summary');
    const logs = await cli(['logs', view.id], rt.as(ownerToken));
    t.match(logs.stdout, /WARN\s+\[warn\] large order from ada of 120/);
  });

  t.test('branch runs its paths in order; exceptions fail documents or the execution; stop ends a path', async (t) => {
    await deploy(
      process('branching', [
        { id: 'fork', kind: 'branch', paths: ['first', 'second', 'third'] },
        { id: 'first', kind: 'set-properties', process: { order: { $expr: '$process.order & "1"' } }, document: { path: '1' } },
        { id: 'second', kind: 'set-properties', process: { order: { $expr: '$process.order & "2"' } }, next: 'halt' },
        { id: 'halt', kind: 'stop' },
        { id: 'third', kind: 'decision', condition: '$properties.bad = "yes"', ifTrue: 'fail', ifFalse: 'done' },
        { id: 'fail', kind: 'exception', message: { $expr: '"refused " & name' } },
        { id: 'done', kind: 'map', expression: '{"ok": name, "order": $process.order}' },
      ], { properties: { order: { default: '' } } }),
    );
    const view = await run('branching', [{ body: '{"name":"x"}' }, { body: '{"name":"y"}', properties: { bad: 'yes' } }]);
    t.equal(view.status, 'error');
    t.equal(view.documentsFailed, 1);
    t.same(view.errors, [{ step: 'fail', code: 'QUARK_ERR_PROCESS_EXCEPTION', message: 'refused y' }]);
    t.same(view.steps.halt, { in: 2, out: 0, errors: 0 }, 'stop ends the path');
    t.ok(bodies(view).includes('{"ok":"x","order":"1122"}'), 'the third path ran after the first two completed');
    t.equal(bodies(view).length, 3, 'two documents from the first path, one from the third');

    await deploy(process('halt-all', [{ id: 'boom', kind: 'exception', scope: 'execution', message: 'stop everything' }]));
    const halted = await run('halt-all', [{ body: 'a' }]);
    t.equal(halted.status, 'error');
    t.equal(halted.errorCode, 'QUARK_ERR_PROCESS_EXCEPTION');
    t.match(halted.errorMessage, /boom: stop everything/);
  });

  t.test('try/catch retries a failing document, then catches what still fails', async (t) => {
    const marker = join(markers, 'flaky-1');
    await deploy(
      process('retrying', [
        { id: 'guard', kind: 'try', try: 'call', catch: 'caught', retries: 1 },
        { id: 'call', kind: 'operation', connection: 'kit', operation: 'flaky', parameters: { marker: { $expr: '$properties.marker' } } },
        { id: 'caught', kind: 'map', expression: '{"caught": $properties."quark.error.message", "step": $properties."quark.error.step"}' },
      ]),
    );
    const retried = await run('retrying', [{ body: 'payload', properties: { marker } }]);
    t.equal(retried.status, 'complete', 'the retry succeeded');
    t.same(retried.steps.call, { in: 2, out: 1, errors: 1 }, 'the step ran twice: failed, then passed');
    t.same(bodies(retried), ['payload']);
    t.equal(retried.output[0].properties['flaky.passed'], 'yes');
    const log = await rt.api('GET', `/api/v1/executions/${retried.id}/log`, ownerToken);
    t.match(log.body, /retrying 1 failed document/);

    // retries: 0 — the first failure is caught
    const noRetry = process('catching', [
      { id: 'guard', kind: 'try', try: 'call', catch: 'caught', retries: 0 },
      { id: 'call', kind: 'operation', connection: 'kit', operation: 'flaky', parameters: { marker: { $expr: '$properties.marker' } } },
      { id: 'caught', kind: 'map', expression: '{"caught": $properties."quark.error.message", "step": $properties."quark.error.step"}' },
    ]);
    await deploy(noRetry);
    const caught = await run('catching', [{ body: 'p', properties: { marker: join(markers, 'flaky-2') } }]);
    t.equal(caught.status, 'complete-with-warnings', 'a caught error is a warning');
    t.same(JSON.parse(bodies(caught)[0]), { caught: 'flaky: the first attempt fails', step: 'call' });
  });

  t.test('process call passes documents in and continues with what comes back; parameters as expressions', async (t) => {
    await deploy(process('enrich', [{ id: 'add', kind: 'map', expression: '$merge([$, {"enriched": true}])', next: 'tag' }, { id: 'tag', kind: 'operation', connection: 'kit', operation: 'echo', parameters: { tag: { $expr: '"t-" & id' }, times: { $expr: 'copies' } } }]));
    await deploy(process('caller', [{ id: 'call', kind: 'process-call', process: 'enrich', next: 'after' }, { id: 'after', kind: 'set-properties', document: { back: 'yes' } }]));
    const view = await run('caller', [json({ id: 7, copies: 2 })]);
    t.equal(view.status, 'complete');
    t.same(view.steps['call>tag'], { in: 1, out: 2, errors: 0 }, 'steps of the called process are counted under the call');
    t.same(view.steps.after, { in: 2, out: 2, errors: 0 });
    t.same(view.output.map((d: any) => [d.properties['echo.tag'], d.properties.back]), [['t-7', 'yes'], ['t-7', 'yes']]);
    t.same(JSON.parse(bodies(view)[0]), { id: 7, copies: 2, enriched: true });
    const log = (await rt.api('GET', `/api/v1/executions/${view.id}/log`, ownerToken)).body as string;
    t.ok(log.split('\n').some((line) => line.includes('"step":"call>tag"') && line.includes('echoing')), "the plugin's log lines are in the execution log, with the step");

    const bad = await run('enrich', [json({ id: 8, copies: 99 })]);
    t.equal(bad.status, 'error', 'a parameter computed as an invalid value fails the document');
    t.equal(bad.errors[0].code, 'QUARK_ERR_OPERATION_INVALID_PARAMETERS');
    t.match(bad.errors[0].message, /must be at most 10 \(\/times\)/);

    const refused = await api('DELETE', '/deployments/enrich');
    t.equal(refused.status, 409);
    t.equal(refused.body.error.code, 'QUARK_ERR_PROCESS_IN_USE');
    t.match(refused.body.error.message, /"caller"/);
  });

  t.test('versions: each deploy is a version; executions record theirs; rollback and undeploy', async (t) => {
    const none = { start: { kind: 'none', next: 'm' } };
    const v1 = await deploy(process('versioned', [{ id: 'm', kind: 'map', expression: '"one"' }], none));
    const v2 = await deploy(process('versioned', [{ id: 'm', kind: 'map', expression: '"two"' }], none));
    t.same([v1.version, v2.version], [1, 2]);
    const second = await run('versioned');
    t.same([second.version, bodies(second)[0]], [2, 'two']);
    const rolled = await cli(['--json', 'rollback', 'versioned', '1'], rt.as(ownerToken));
    t.equal(rolled.code, 0);
    t.same([rolled.json().version, rolled.json().note], [3, 'rollback to version 1']);
    const third = await run('versioned');
    t.same([third.version, bodies(third)[0]], [3, 'one']);
    const shown = (await api('GET', '/deployments/versioned?version=2')).body;
    t.equal(shown.definition.steps[0].expression, '"two"');
    t.same(shown.versions.map((v: any) => v.version), [1, 2, 3]);
    t.equal((await cli(['undeploy', 'versioned'], rt.as(ownerToken))).code, 0);
    const gone = await api('POST', '/executions', { process: 'versioned' });
    t.equal(gone.status, 404);
    t.equal(gone.body.error.code, 'QUARK_ERR_PROCESS_NOT_FOUND');
    t.equal((await api('GET', '/deployments/versioned')).body.activeVersion, null, 'the history stays');
  });

  t.test('test mode runs a file without deploying it; process properties persist across executions', async (t) => {
    const file = join(tempDir(t), 'counter.json');
    const counter = { ...process('counter', [{ id: 'inc', kind: 'set-properties', process: { runs: { $expr: '$process.runs + 1' } }, next: 'say' }, { id: 'say', kind: 'map', expression: '"run " & $process.runs' }], { properties: { runs: { default: 0, persist: true } } }), start: { kind: 'none', next: 'inc' } };
    writeFileSync(file, JSON.stringify(counter));
    const tested = await cli(['--json', 'run', '--file', file], rt.as(ownerToken));
    t.equal(tested.code, 0, tested.stderr);
    t.same([tested.json().status, tested.json().version, tested.json().trigger], ['complete', null, 'test']);
    t.equal((await api('GET', '/deployments/counter')).status, 404, 'test mode deployed nothing');
    await deploy(counter);
    t.same(bodies(await run('counter')), ['run 1']);
    t.same(bodies(await run('counter')), ['run 2'], 'the persisted property carried over');
    const waited = await cli(['run', 'counter', '--wait'], rt.as(ownerToken));
    t.equal(waited.code, 0);
    t.match(waited.stdout, /status\s+complete/);
    t.match(waited.stdout, /trigger\s+manual/);
  });

  t.test('documents from CLI files, split into lines; logs --follow ends with the execution', async (t) => {
    await deploy(process('lines', [{ id: 'each', kind: 'split', mode: 'lines', next: 'upper' }, { id: 'upper', kind: 'map', expression: '$uppercase($) & "/" & $properties.source' }]));
    const dir = tempDir(t);
    writeFileSync(join(dir, 'a.txt'), 'one\ntwo\n\nthree\n');
    const result = await cli(['--json', 'run', 'lines', '--doc', join(dir, 'a.txt'), '--property', 'source=a', '--wait'], rt.as(ownerToken));
    t.equal(result.code, 0, result.stderr);
    const view = result.json();
    t.same(view.steps.each, { in: 1, out: 3, errors: 0 }, 'empty lines are skipped');
    t.equal(view.documentsOut, 3);
    const out = join(dir, 'out');
    const saved = await cli(['run', 'lines', '--doc', join(dir, 'a.txt'), '--property', 'source=b', '--output', out], rt.as(ownerToken));
    t.equal(saved.code, 0, saved.stderr);
    t.match(saved.stdout, /3 output document\(s\) written to/);
    t.equal(readFileSync(join(out, 'output-3'), 'utf8'), 'THREE/b');
    t.same(JSON.parse(readFileSync(join(out, 'output-3.properties.json'), 'utf8')), { source: 'b' });
    const followed = await cli(['logs', view.id, '--follow'], rt.as(ownerToken));
    t.equal(followed.code, 0);
    t.match(followed.stdout, /execution ended complete/);
  });

  t.test('guests cannot deploy or run; accounts see only their own executions', async (t) => {
    const guest = await api('POST', '/accounts', { name: 'visitor', relation: 'guest' });
    t.equal(guest.status, 201);
    const token = (await api('POST', '/tokens', { name: 'visitor', account: 'visitor' })).body.token;
    const denied = await rt.api('POST', '/api/v1/deployments', token, process('g', [{ id: 'm', kind: 'map', expression: '1' }]));
    t.equal(denied.status, 403);
    t.equal((await rt.api('POST', '/api/v1/executions', token, { process: 'orders' })).status, 403);
    t.same((await rt.api('GET', '/api/v1/executions', token)).body.executions, []);
  });

  t.test('metrics count executions', async (t) => {
    const metrics = await rt.api('GET', '/metrics');
    t.match(metrics.body, /quark_executions_finished_total\{status="complete"\} \d+/);
    t.match(metrics.body, /quark_executions_started_total\{trigger="test"\} 1/);
    t.match(metrics.body, /quark_execution_duration_seconds_bucket/);
  });

  t.test('no secret of a connection appears in execution logs', async (t) => {
    const all = (await api('GET', '/executions?limit=1000')).body.executions;
    t.ok(all.length > 5);
    for (const e of all) t.notMatch((await api('GET', `/executions/${e.id}/log`)).body, /kit-secret-value-1/, `the log of ${e.processId} ${e.id}`);
    t.notMatch(readFileSync(join(home, 'quark.db')).toString('latin1') + (existsSync(join(home, 'quark.db-wal')) ? readFileSync(join(home, 'quark.db-wal')).toString('latin1') : ''), /kit-secret-value-1/, 'nor in the store');
    t.notOk(existsSync(join(home, 'work')) && readdirSync(join(home, 'work')).length > 0, 'work files of ended executions are removed');
  });
});
