// Redis restarted mid-run (SHUTDOWN NOSAVE, its data folder emptied, started again on the
// same port): a Redis of this test's own, as ../shared/tools/services starts it. Starts
// answered while it is down are committed and run once it is back (the reconciler adds
// their jobs); the ones that were queued or running when it went down run or finish;
// nothing is lost and nothing runs twice.
import t from 'tap';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { until } from '../helpers/quark.js';
import { counting, ended, ownRedis, ownRedisSkip, run, startMolecule, tagged, type Api } from '../helpers/molecule.js';

t.test('Redis restarted empty mid-run: queued executions re-enqueued by the reconciler, running ones finish, nothing lost, nothing twice', { skip: ownRedisSkip }, async (t) => {
  const redis = await ownRedis(t);
  const { api, counter } = await startMolecule(t, 2, { limits: { maxRunningExecutions: 2 }, queueUrl: redis.url });
  const [a, b] = [api(0), api(1)];
  t.equal((await a('POST', '/deployments', counting('through-restart', 400))).status, 201);

  const ids: string[] = [];
  const startOne = async (api: Api, tag: string) => {
    const answer = await api('POST', '/executions', { process: 'through-restart', ...tagged(tag) });
    t.equal(answer.status, 202, `${tag} accepted`);
    ids.push(answer.body.id);
  };
  for (let i = 0; i < 16; i++) await startOne(i % 2 ? b : a, `before-${i}`);
  await until('a few complete and some still queued', async () => {
    const done = [...counter.counts.keys()].length;
    return done >= 3 ? done : undefined;
  });

  await run('redis-cli', ['-p', String(redis.port), 'shutdown', 'nosave']).catch(() => undefined);
  // what Redis held is gone too: the worst restart (AOF would have kept it)
  rmSync(join(redis.dir, 'redis'), { recursive: true, force: true });
  for (let i = 0; i < 4; i++) await startOne(i % 2 ? b : a, `during-${i}`);
  const queuedWhileDown = ((await a('GET', '/executions?status=queued')).body.executions as any[]).length;
  t.ok(queuedWhileDown > 0, `executions wait queued in PostgreSQL while Redis is down (${queuedWhileDown})`);
  await redis.restart();

  const views = await Promise.all(ids.map((id) => ended(a, id)));
  t.same(views.filter((v) => v.status !== 'complete').map((v) => [v.id, v.status, v.errorCode]), [], 'all 20 complete');
  const tags = [...Array.from({ length: 16 }, (_, i) => `before-${i}`), ...Array.from({ length: 4 }, (_, i) => `during-${i}`)];
  t.same(tags.filter((tag) => counter.counts.get(tag) !== 1), [], 'each counted exactly once');
});
