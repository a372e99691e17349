// Resources that operations hold (context.resources.hold) and the runtime releases after
// a crash: through the real CLI runtime as a child process, with the holds-resource
// fixture plugin, which appends a line to a marker file for each hold and recover call.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixturePlugins, initHome, startRuntime, tempDir, until as untilValue, type Running } from '../helpers/quark.js';

const token = 'tok-Sekr1t-9f3a';

interface MarkerLine {
  call: 'hold' | 'recover';
  id: string;
  name?: string;
  kind?: string;
  data?: Record<string, unknown>;
  attempts?: number;
  tokenSeen?: boolean;
}

const lines = (marker: string): MarkerLine[] =>
  (existsSync(marker) ? readFileSync(marker, 'utf8') : '').split('\n').filter(Boolean).map((l) => JSON.parse(l) as MarkerLine);

/** Whether the runtime logged a line about this resource with this message. */
const logged = (rt: Running, id: string, message: string) => rt.output().split('\n').some((l) => l.includes(`"resource":"${id}"`) && l.includes(message));

/** Waits for a condition that an event makes true (a line in a file or a log), polling. */
async function until(what: string, check: () => boolean | Promise<boolean>, limitMs = 120_000): Promise<void> {
  await untilValue(what, async () => ((await check()) ? true : undefined), limitMs);
}

const metric = async (rt: Running, outcome: string) => {
  const text = (await rt.api<string>('GET', '/metrics')).body;
  const match = new RegExp(`quark_recovered_resources_total\\{connector="holds-resource",outcome="${outcome}"\\} (\\d+)`).exec(text);
  return match ? Number(match[1]) : 0;
};

t.test('resources an operation holds are released by its connector after a crash', async (top) => {
  const t = top;
  const { home, ownerToken } = await initHome(t, { config: { plugins: { paths: [join(fixturePlugins, 'holds-resource')] } } });
  const dir = tempDir(t);
  const marker = join(dir, 'marker.ndjson');
  let rt = await startRuntime(t, home);
  const created = await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'things', connector: 'holds-resource', config: { marker, token } });
  t.equal(created.status, 201, JSON.stringify(created.body));
  const hold = (parameters: Record<string, unknown>, connection = 'things') => rt.api('POST', `/api/v1/connections/${connection}/operations/hold`, ownerToken, { parameters, documents: [{}] });

  t.test('a resource released by the operation leaves nothing to recover', async (t) => {
    const done = await hold({ then: 'release', name: 'released' });
    t.equal(done.body.results[0].status, 'success', JSON.stringify(done.body));
  });

  t.test('a description holding a secret of the connection is refused by path, and nothing is recorded', async (t) => {
    const refused = await hold({ leakSecret: true, name: 'leaky' });
    t.equal(refused.body.results[0].status, 'failure');
    t.equal(refused.body.results[0].code, 'QUARK_ERR_RESOURCE_INVALID');
    t.match(refused.body.results[0].message, /\/data holds a secret of the connection/);
    t.notMatch(JSON.stringify(refused.body), token, 'the secret is not in the answer');
  });

  t.test('kill -9 while an operation holds a resource: the next start has the connector release it, once', async (t) => {
    const pending = hold({ then: 'wait', name: 'killed' }).catch(() => undefined);
    await until('the operation to hold its resource', () => lines(marker).some((l) => l.call === 'hold' && l.name === 'killed'));
    const held = lines(marker).find((l) => l.call === 'hold' && l.name === 'killed')!;
    await rt.stop('SIGKILL');
    await pending;
    t.notOk(lines(marker).some((l) => l.call === 'recover'), 'nothing was recovered before the restart');

    rt = await startRuntime(top, home);
    await until('the recovery to be reported', () => logged(rt, held.id, 'was released by its connector'));
    const recovered = lines(marker).filter((l) => l.call === 'recover');
    t.equal(recovered.length, 1, 'one recover call: the released resource and the refused one were never recorded');
    t.match(recovered[0], { id: held.id, kind: 'fixture.thing', data: { name: 'killed' }, attempts: 0, tokenSeen: true }, 'with its description and the connection\'s configuration, secret unsealed');
    t.match(rt.output(), /recovering 1 resource\(s\) left behind by the previous run/);
    t.equal(await metric(rt, 'released'), 1, 'counted in quark_recovered_resources_total');

    await rt.stop();
    rt = await startRuntime(top, home);
    await until('the start to look for resources', () => rt.output().includes('no resource was left behind by the previous run'));
    t.equal(lines(marker).filter((l) => l.call === 'recover').length, 1, 'a released record is gone: no second recover');
  });

  t.test('a resource an operation kept (its release failed) is recovered once it ends, retried until the connector succeeds', async (t) => {
    const updated = await rt.api('PUT', '/api/v1/connections/things', ownerToken, { config: { marker, failRecoveries: 1 } });
    t.equal(updated.status, 200, JSON.stringify(updated.body));
    const kept = await hold({ then: 'keep', name: 'kept' });
    t.equal(kept.body.results[0].status, 'success');
    const id = kept.body.results[0].documents[0].properties.resource as string;
    await until('the retry to release it', () => logged(rt, id, 'was released by its connector'));
    t.ok(logged(rt, id, 'releasing a resource left behind failed: recover threw: the thing is not reachable'), 'the failed attempt is logged with the connector\'s reason');
    const attempts = lines(marker).filter((l) => l.call === 'recover' && l.id === id);
    t.same(attempts.map((l) => l.attempts), [0, 1], 'the second call knows of the failed first');
    t.notMatch(rt.output(), token, 'the secret in the connector\'s error is scrubbed from the log');
    t.equal(await metric(rt, 'failed'), 1);
    t.equal(await metric(rt, 'released'), 1, 'counted in this run');
  });

  t.test('a resource whose connection was deleted is dropped with a log line that describes it', async (t) => {
    const doomedMarker = join(dir, 'doomed.ndjson');
    await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'doomed', connector: 'holds-resource', config: { marker: doomedMarker, token, failRecoveries: 1000 } });
    const kept = await hold({ then: 'keep', name: 'orphan' }, 'doomed');
    t.equal(kept.body.results[0].status, 'success');
    await until('a first failed attempt', () => lines(doomedMarker).some((l) => l.call === 'recover'));
    const removed = await rt.api('DELETE', '/api/v1/connections/doomed', ownerToken);
    t.equal(removed.status, 204);
    const id = kept.body.results[0].documents[0].properties.resource as string;
    await until('the record to be dropped', () => logged(rt, id, 'was dropped: its connection is gone'));
    t.match(rt.output(), /"data":\{"name":"orphan"\}/, 'the description, for releasing it by hand');
    t.equal(await metric(rt, 'dropped'), 1);
  });
});
