import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeCursor, encodeCursor, pageOf } from '../../runtime/api/paging.js';
import type { QuarkError } from '../../runtime/core/errors.js';
import { initHome, root, startRuntime, tempDir } from '../helpers/quark.js';

t.test('pageOf: stable order by a unique key, pages that neither skip nor repeat, the whole list without paging', async (t) => {
  const items = ['e', 'a', 'd', 'b', 'c'].map((name, i) => ({ name, id: `id${i}` }));
  const order = { keyOf: (x: { name: string; id: string }) => [x.name, x.id], length: 2 };
  t.same(pageOf('things', items, order, {}).items.map((x) => x.name), ['a', 'b', 'c', 'd', 'e'], 'no cursor, no limit: everything, in order');
  t.equal(pageOf('things', items, order, {}).nextCursor, undefined);
  const seen: string[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 10; pages++) {
    const page = pageOf('things', items, order, { limit: '2', ...(cursor ? { cursor } : {}) });
    seen.push(...page.items.map((x) => x.name));
    cursor = page.nextCursor;
    if (!cursor) break;
  }
  t.same(seen, ['a', 'b', 'c', 'd', 'e'], 'pages of two, in order');
  t.equal(pageOf('things', items, order, { limit: '5' }).nextCursor, undefined, 'an exact last page has no next cursor');
  for (const bad of ['not base64 at all!', encodeCursor('other', ['a', 'id1']), encodeCursor('things', ['a']), Buffer.from('{"v":2}').toString('base64url'), Buffer.from('null').toString('base64url')]) {
    const error = t.throws(() => decodeCursor('things', bad, 2)) as unknown as QuarkError;
    t.equal(error.code, 'QUARK_ERR_API_CURSOR_INVALID', `refused: ${bad}`);
  }
});

t.test('GET /connections, /deployments and /executions: search, limit, cursor; a bad cursor is a 400 with its code', async (t) => {
  const { home, ownerToken } = await initHome(t);
  const rt = await startRuntime(t, home);
  const folder = tempDir(t);
  for (const name of ['orders-in', 'billing', 'orders-out', 'archive', 'Orders-Old']) {
    t.equal((await rt.api('POST', '/api/v1/connections', ownerToken, { name, connector: 'local-files', config: { folder } })).status, 201);
  }
  const names = async (query: string) => {
    const r = await rt.api('GET', `/api/v1/connections${query}`, ownerToken);
    t.equal(r.status, 200, query);
    return { names: r.body.connections.map((c: any) => c.name), next: r.body.nextCursor as string | undefined };
  };
  t.same((await names('')).names, ['Orders-Old', 'archive', 'billing', 'orders-in', 'orders-out'], 'unpaged: all, by name');
  t.equal((await names('')).next, undefined);
  const first = await names('?limit=2');
  t.same(first.names, ['Orders-Old', 'archive']);
  const second = await names(`?limit=2&cursor=${first.next}`);
  t.same(second.names, ['billing', 'orders-in']);
  const third = await names(`?limit=2&cursor=${second.next}`);
  t.same(third.names, ['orders-out']);
  t.equal(third.next, undefined, 'the last page');
  t.same((await names('?q=ORDERS')).names, ['Orders-Old', 'orders-in', 'orders-out'], 'search ignores case');
  t.same((await names('?q=local-files&limit=1')).names, ['Orders-Old'], 'search in the connector id too');

  const definition = JSON.parse(readFileSync(join(root, 'processes', 'orders-no-connector.json'), 'utf8'));
  for (const id of ['orders-a', 'orders-b', 'other']) t.equal((await rt.api('POST', '/api/v1/deployments', ownerToken, { ...definition, id })).status, 201);
  const d1 = await rt.api('GET', '/api/v1/deployments?limit=2', ownerToken);
  t.same(d1.body.deployments.map((d: any) => d.process), ['orders-a', 'orders-b']);
  const d2 = await rt.api('GET', `/api/v1/deployments?limit=2&cursor=${d1.body.nextCursor}`, ownerToken);
  t.same(d2.body.deployments.map((d: any) => d.process), ['other']);
  t.same((await rt.api('GET', '/api/v1/deployments?q=OTH', ownerToken)).body.deployments.map((d: any) => d.process), ['other']);

  const ids: string[] = [];
  for (const process of ['orders-a', 'orders-b', 'orders-a', 'other', 'orders-a']) {
    ids.unshift((await rt.api('POST', '/api/v1/executions', ownerToken, { process, wait: true })).body.id);
  }
  const all: string[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 10; pages++) {
    const r = await rt.api('GET', `/api/v1/executions?limit=2${cursor ? `&cursor=${cursor}` : ''}`, ownerToken);
    t.ok(r.body.executions.length <= 2);
    all.push(...r.body.executions.map((e: any) => e.id));
    cursor = r.body.nextCursor;
    if (!cursor) break;
  }
  t.same(all, ids, 'executions page by page: newest first, each once');
  const a = await rt.api('GET', '/api/v1/executions?process=orders-a&limit=2', ownerToken);
  t.equal(a.body.executions.length, 2);
  const rest = await rt.api('GET', `/api/v1/executions?process=orders-a&limit=2&cursor=${a.body.nextCursor}`, ownerToken);
  t.same(rest.body.executions.map((e: any) => e.processId), ['orders-a'], 'a filter holds across pages');
  t.equal(rest.body.nextCursor, undefined);
  t.same((await rt.api('GET', '/api/v1/executions?q=OTHER', ownerToken)).body.executions.map((e: any) => e.id), [ids[1]], 'search by process id');
  t.same((await rt.api('GET', `/api/v1/executions?q=${ids[2]}`, ownerToken)).body.executions.map((e: any) => e.id), [ids[2]], 'search by execution id');

  for (const path of ['/api/v1/executions?cursor=nope', `/api/v1/connections?cursor=${d1.body.nextCursor}`, '/api/v1/deployments?cursor=%7B%7D']) {
    const bad = await rt.api('GET', path, ownerToken);
    t.equal(bad.status, 400, path);
    t.equal(bad.body.error.code, 'QUARK_ERR_API_CURSOR_INVALID');
    t.equal(bad.body.error.details.problems[0].path, '/querystring/cursor');
  }
  t.equal((await rt.api('GET', '/api/v1/executions?limit=0', ownerToken)).body.error.code, 'QUARK_ERR_API_INVALID_REQUEST', 'a bad limit');
});
