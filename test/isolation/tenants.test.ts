// Tenants' local folders are walled off from each other in isolation "process" (a cloud
// runtime's default): a task runs only in a plugin host granted exactly its own folders, so
// tenant A's hostile plugin, with or without a folder of its own, can read neither tenant
// B's folder nor the owner's local-files folder once their tasks ran there; and a folder
// a connection no longer names is taken back (its host is retired). Only the owner may
// Test Connection, and local-files has no operations: B's folder belongs to a connection
// of the hostile fixture (any connector with an `x-local-path` field and operations).
// Through the real CLI runtime as a child process.
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fixturePlugins, initHome, startRuntime, untilOutput } from '../helpers/quark.js';

t.test('two tenants of a cloud runtime: A\'s hostile plugin cannot read B\'s local folder', async (t) => {
  const outside = mkdtempSync(join(tmpdir(), 'quark-tenants-'));
  t.teardown(() => rmSync(outside, { recursive: true, force: true }));
  const [folderA, folderB, folderOwner] = [join(outside, 'a'), join(outside, 'b'), join(outside, 'owner')];
  for (const folder of [folderA, folderB, folderOwner]) mkdirSync(folder);
  writeFileSync(join(folderA, 'mine.txt'), 'tenant A\'s own file');
  writeFileSync(join(folderB, 'secret.txt'), 'tenant B\'s file');
  writeFileSync(join(folderOwner, 'secret.txt'), 'the owner\'s file');
  const { home, ownerToken } = await initHome(t, { kind: 'cloud', config: { plugins: { paths: [join(fixturePlugins, 'hostile')] } } });
  const rt = await startRuntime(t, home);
  const tenant = async (name: string) => {
    t.equal((await rt.api('POST', '/api/v1/accounts', ownerToken, { name, relation: 'tenant' })).status, 201);
    const token = await rt.api('POST', '/api/v1/tokens', ownerToken, { name: 'ci', account: name });
    t.equal(token.status, 201, JSON.stringify(token.body));
    return token.body.token as string;
  };
  const [tokenA, tokenB] = [await tenant('tenant-a'), await tenant('tenant-b')];
  const create = async (token: string, name: string, connector: string, config: Record<string, unknown>) => {
    const created = await rt.api('POST', '/api/v1/connections', token, { name, connector, config });
    t.equal(created.status, 201, JSON.stringify(created.body));
  };
  const tested = async (token: string, name: string) => (await rt.api('POST', `/api/v1/connections/${name}/test`, token, {})).body;
  const read = async (connection: string, path: string, token = tokenA) => {
    const answer = await rt.api('POST', `/api/v1/connections/${connection}/operations/read`, token, { parameters: { path }, documents: [{}] });
    t.equal(answer.status, 200, JSON.stringify(answer.body));
    return answer.body.results[0];
  };

  // the owner's local-files connection and B's connection have run in their folders (each granted to a host)
  await create(ownerToken, 'files', 'local-files', { folder: folderOwner });
  t.equal((await tested(ownerToken, 'files')).status, 'ok');
  await create(tokenB, 'files', 'hostile', { token: 'hostile-token-5678', folder: folderB });
  t.match(await read('files', join(folderB, 'secret.txt'), tokenB), { status: 'success', documents: [{ properties: { read: 'yes' } }] }, 'B reads its own folder');
  await create(tokenA, 'bad', 'hostile', { token: 'hostile-token-1234' });
  await create(tokenA, 'bad-with-folder', 'hostile', { token: 'hostile-token-1234', folder: folderA });

  const refused = { status: 'application-error', code: 'ERR_ACCESS_DENIED' };
  t.test('A\'s hostile plugin with no folder reads no one\'s folder', async (t) => {
    t.match(await read('bad', join(folderB, 'secret.txt')), refused);
    t.match(await read('bad', join(folderOwner, 'secret.txt')), refused);
    t.match(await read('bad', join(folderA, 'mine.txt')), refused);
  });

  t.test('A\'s hostile plugin granted A\'s folder reads it, and neither B\'s nor the owner\'s', async (t) => {
    t.match(await read('bad-with-folder', join(folderA, 'mine.txt')), { status: 'success', documents: [{ properties: { read: 'yes' } }] });
    t.match(await read('bad-with-folder', join(folderB, 'secret.txt')), refused);
    t.match(await read('bad-with-folder', join(folderOwner, 'secret.txt')), refused);
  });

  t.test('an operation\'s parameter marked x-local-path is granted to the task\'s host, under the same refusal rules', async (t) => {
    const readGranted = (path: string) => rt.api('POST', '/api/v1/connections/bad/operations/read-granted', tokenA, { parameters: { path }, documents: [{}] });
    const granted = await readGranted(join(folderA, 'mine.txt'));
    t.equal(granted.status, 200, JSON.stringify(granted.body));
    t.match(granted.body.results[0], { status: 'success', documents: [{ properties: { read: 'yes' } }] });
    const refusedFile = await readGranted(join(home, 'master.key'));
    t.equal(refusedFile.status, 400, JSON.stringify(refusedFile.body));
    t.match(refusedFile.body.error, { code: 'QUARK_ERR_CONNECTION_FOLDER_REFUSED', details: { problems: [{ path: '/parameters/path', message: /holds master\.key/ }] } });
    t.match(await read('bad', join(folderA, 'mine.txt')), refused, 'the parameter\'s grant stays with its own host');
  });

  t.test('a deleted connection\'s folder is taken back: its host is retired', async (t) => {
    const retired = untilOutput(rt, /a connection no longer names one of its folders[^\n]*a plugin host granted local folders is retired/);
    t.equal((await rt.api('DELETE', '/api/v1/connections/files', tokenB)).status, 204);
    await retired;
    t.pass('the host granted B\'s folder was retired');
  });

  t.test('the runtime answers throughout, and the others\' connections still work', async (t) => {
    t.equal((await rt.api('GET', '/healthz')).status, 200);
    t.equal((await tested(ownerToken, 'files')).status, 'ok');
    t.match(await read('bad-with-folder', join(folderA, 'mine.txt')), { status: 'success', documents: [{ properties: { read: 'yes' } }] });
  });
});
