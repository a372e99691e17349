// Redis restarted mid-run (SHUTDOWN NOSAVE, its data folder emptied, started again on the
// same port): a Redis of this test's own, as ../shared/tools/services starts it. Starts
// answered while it is down are committed and run once it is back (the reconciler adds
// their jobs); the ones that were queued or running when it went down run or finish;
// nothing is lost and nothing runs twice.
import t from 'tap';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startRuntime, until, type Running } from '../helpers/quark.js';
import { counterServer, counting, moleculeHomes, ownRedis, ownRedisSkip, run, tagged } from '../helpers/molecule.js';

type Api = (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>;
const apiOf = (rt: Running, token: string): Api => (method, path, body) => rt.api(method, `/api/v1${path}`, token, body);
const terminal = (status: string) => !['queued', 'in-process'].includes(status);

t.test('Redis restarted empty mid-run: queued executions re-enqueued by the reconciler, running ones finish, nothing lost, nothing twice', { skip: ownRedisSkip }, async (t) => {
  const redis = await ownRedis(t);
  const { homes, ownerToken } = await moleculeHomes(t, 2, { maxRunningExecutions: 2 }, redis.url);
  const counter = await counterServer(t);
  const nodes = await Promise.all(homes.map((home) => startRuntime(t, home)));
  const [a, b] = nodes.map((rt) => apiOf(rt, ownerToken)) as [Api, Api];
  t.equal((await a('POST', '/connections', { name: 'counter', connector: 'counter-kit', config: { url: counter.url } })).status, 201);
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

  const views = await Promise.all(
    ids.map((id) =>
      until(`execution ${id} to end`, async () => {
        const view = (await a('GET', `/executions/${id}`)).body;
        return view && terminal(view.status) ? view : undefined;
      }),
    ),
  );
  t.same(views.filter((v) => v.status !== 'complete').map((v) => [v.id, v.status, v.errorCode]), [], 'all 20 complete');
  const tags = [...Array.from({ length: 16 }, (_, i) => `before-${i}`), ...Array.from({ length: 4 }, (_, i) => `during-${i}`)];
  t.same(tags.filter((tag) => counter.counts.get(tag) !== 1), [], 'each counted exactly once');
});
