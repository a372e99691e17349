/**
 * The runtime console in a real browser: Debian's chromium driven by playwright-core.
 * Skipped, saying so, when no Chromium is installed (`.ci/run` installs one).
 * Screenshots of the main pages go to test-artifacts/console/.
 */
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import S3rver from 's3rver';
import Database from 'better-sqlite3';
import { fixturePlugins, initHome, root, startRuntime, tempDir, type Running } from '../helpers/quark.js';
import { openEvents } from '../helpers/events.js';
import { consoleArtifacts, launchBrowser } from '../helpers/browser.js';
import type { Browser } from 'playwright-core';

// page functions run in the browser; the test compiles without the DOM library
declare const document: any, window: any, sessionStorage: any;
type HTMLElement = any;
type HTMLInputElement = any;

const secret = 'console-secret-Vq81xZ';
const wrongSecret = 'wrong-secret-Jm44pT';

const browser = await launchBrowser(t, 'the console');
if (browser) await suite(browser);

async function suite(browser: Browser) {

  // s3rver knows its access keys but does not compute SigV4 signatures: a key pair of our
  // own (its secret distinct from every other string on the page), and a wrong *access
  // key* is what makes the credentials check fail
  const account = createRequire(import.meta.url)('s3rver/lib/models/account.js');
  account.DUMMY_ACCOUNT.createKeyPair('CONSOLEKEY', secret);

  async function s3(t: any) {
    const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: tempDir(t, 'quark-s3rver-'), configureBuckets: [{ name: 'console', configs: [] }] });
    const { port } = await server.run();
    t.teardown(() => server.close());
    return `http://127.0.0.1:${port}`;
  }

  /** A page that records every request and response body (not event streams) it sees. */
  async function open(t: any, rt: Running, viewport = { width: 1200, height: 900 }) {
    const context = await browser.newContext({ viewport });
    t.teardown(() => context.close());
    const page = await context.newPage();
    const requests: string[] = [];
    const bodies: Promise<string>[] = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('response', (r) => {
      if (!(r.headers()['content-type'] ?? '').startsWith('text/event-stream')) bodies.push(r.text().catch(() => ''));
    });
    page.on('dialog', (d) => void d.accept());
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => {
      // failed API calls the page expects (400, 403) are logged by the browser itself
      if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) errors.push(m.text());
    });
    await page.goto(rt.url + '/');
    return { page, requests, responses: async () => (await Promise.all(bodies)).join('\n'), errors };
  }

  async function signIn(page: import('playwright-core').Page, token: string) {
    // keyboard only: the token field has the focus, Enter submits
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.keyboard.type(token);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: /^Runtime / }).waitFor();
  }

  const metric = async (rt: Running, outcome: string) => {
    const text = (await rt.api('GET', '/metrics')).body as string;
    return Number(new RegExp(`quark_test_connection_total\\{[^}]*outcome="${outcome}"[^}]*\\} (\\d+)`).exec(text)?.[1] ?? 0);
  };

  t.test('owner: sign in, create an S3 connection through the generated form, Test Connection, secrets never shown', async (t) => {
    const endpoint = await s3(t);
    const { home, ownerToken } = await initHome(t, { kind: 'atom', ownerName: 'acme' });
    const rt = await startRuntime(t, home);
    const { page, requests, responses, errors } = await open(t, rt);

    t.equal(await page.evaluate(() => document.activeElement?.id), 'token', 'the token field has the focus');
    await signIn(page, ownerToken);
    t.equal(await page.evaluate(() => sessionStorage.getItem('quark.token')), ownerToken, 'the token is kept in sessionStorage');
    const facts = await page.locator('dl.facts').innerText();
    t.match(facts, /Owner account\s+acme/, 'the owner sees the owner account');
    t.match(facts, /Test Connection\s+allowed for your account/);
    t.match(facts, /Health\s+ready/);
    t.match(facts, /Kind\s+atom/);
    await page.screenshot({ path: join(consoleArtifacts, 'runtime.png'), fullPage: true });

    await page.getByRole('link', { name: 'Connectors' }).click();
    await page.getByRole('heading', { name: 'Connectors' }).waitFor();
    t.match(await page.locator('main').innerText(), /amazon-s3/, 'the loaded connectors are listed');
    t.match(await page.locator('main').innerText(), /Quarantined \(0\)/);
    await page.screenshot({ path: join(consoleArtifacts, 'connectors.png'), fullPage: true });

    await page.getByRole('link', { name: 'Connections' }).click();
    await page.getByLabel('Connector').selectOption('amazon-s3');
    await page.getByRole('button', { name: 'New connection' }).click();
    await page.getByRole('heading', { name: 'New Amazon S3 connection' }).waitFor();

    // the form follows the schema: groups in order, fields by x-order, labels, units, defaults, enum labels, help
    t.same(await page.locator('legend').allInnerTexts(), ['Credentials', 'Bucket', 'Transfers', 'HTTP proxy', 'S3-compatible stores']);
    t.same(await page.locator('[data-field-wrap]').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.fieldWrap)), ['awsAccessKey', 'awsSecretKey', 'region', 'bucket', 'multipartThresholdMb', 'proxyUser', 'proxyPassword', 'endpoint', 'forcePathStyle']);
    t.equal(await page.getByLabel('AWS region').inputValue(), 'us-east-1', 'the default is selected');
    t.equal(await page.locator('select[name=region] option[value="eu-west-1"]').innerText(), 'Europe (Ireland) — eu-west-1', 'enum values show their labels');
    t.equal(await page.getByLabel('Multipart threshold').inputValue(), '100');
    t.match(await page.locator('[data-field-wrap=multipartThresholdMb]').innerText(), /MB/, 'the unit is shown');
    t.match(await page.locator('[data-field-wrap=bucket]').innerText(), /Bucket names are 3 to 63/, 'x-help is shown');
    t.equal(await page.locator('[data-field-wrap=awsAccessKey] .required').count(), 1, 'required fields are marked');
    t.equal(await page.locator('[data-field-wrap=endpoint] .required').count(), 0);
    t.equal(await page.getByLabel('AWS secret key').getAttribute('type'), 'password');

    // keyboard: Tab follows the schema's order
    await page.getByLabel('Name').focus();
    const order: string[] = [];
    for (let i = 0; i < 4; i++) {
      await page.keyboard.press('Tab');
      order.push(await page.evaluate(() => document.activeElement?.getAttribute('name')));
    }
    t.same(order, ['awsAccessKey', 'awsSecretKey', 'region', 'bucket'], 'Tab moves through the fields in x-order');

    // validation next to the fields, before anything is sent
    await page.getByLabel('Name').fill('s3-console');
    await page.getByLabel('AWS access key').fill('CONSOLEKEY');
    await page.getByLabel('AWS secret key').fill(secret);
    await page.getByLabel('Amazon S3 bucket').fill('X');
    await page.getByLabel('Endpoint URL').fill(endpoint);
    await page.getByLabel('Path-style addressing').check();
    await page.getByRole('button', { name: 'Create' }).click();
    t.match(await page.locator('[data-field-wrap=bucket] .field-error').innerText(), /^"Amazon S3 bucket" must be at least 3 characters long; "Amazon S3 bucket" must be an S3 bucket name/, 'the error is next to its field');
    t.equal(await page.evaluate(() => document.activeElement?.getAttribute('name')), 'bucket', 'the first invalid field has the focus');
    t.equal(await page.getByLabel('Amazon S3 bucket').getAttribute('aria-invalid'), 'true');
    await page.getByLabel('Amazon S3 bucket').fill('console');

    // what only the runtime's ajv catches (a URI with a space) comes back next to its field too
    await page.getByLabel('Endpoint URL').fill('http://exa mple.test');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.locator('[data-field-wrap=endpoint] .field-error:not([hidden])').waitFor();
    t.match(await page.locator('[data-field-wrap=endpoint] .field-error').innerText(), /^"Endpoint URL" must be a URL that starts with http:\/\/ or https:\/\/ and has no spaces$/, 'a server-side problem, shown at its field');
    t.match(await page.locator('#status').innerText(), /QUARK_ERR_CONNECTION_INVALID/);
    await page.getByLabel('Endpoint URL').fill(endpoint);

    // Test Connection of the unsaved form
    await page.getByRole('button', { name: 'Test Connection' }).click();
    await page.locator('#test-result').waitFor();
    t.match(await page.locator('#test-result').innerText(), /Test Connection:\s+ok/, 'unsaved: ok');

    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('heading', { name: 'Connection s3-console' }).waitFor();
    t.match(await page.locator('[data-field-wrap=awsSecretKey]').innerText(), /Set \(hidden\)/, 'a set secret shows as set');
    t.equal(await page.locator('[data-field-wrap=awsSecretKey] input').count(), 0, 'no input holds it');
    t.notMatch(await page.locator('main').innerText(), /\b(null|undefined)\b/, 'no stray null or undefined on the page');
    await page.screenshot({ path: join(consoleArtifacts, 'connection-form.png'), fullPage: true });

    // saved: leaving the secret alone keeps it
    await page.getByRole('button', { name: 'Test Connection' }).click();
    await page.locator('#test-result').waitFor();
    const ok = await page.locator('#test-result').innerText();
    t.match(ok, /Test Connection:\s+ok/, 'saved, secret kept: ok');
    t.match(ok, /Access key and secret key/);

    // wrong keys (unsaved changes): the credentials check fails with its message
    await page.getByRole('button', { name: 'Replace AWS secret key' }).click();
    t.equal(await page.evaluate(() => (document.activeElement as HTMLInputElement | null)?.type), 'password', 'Replace focuses the new secret field');
    await page.keyboard.type(wrongSecret);
    await page.getByLabel('AWS access key').fill('NOSUCHKEY');
    await page.getByRole('button', { name: 'Test Connection' }).click();
    await page.locator('#test-result').waitFor();
    await page.waitForFunction(() => /failed/.test(document.querySelector('#test-result')?.textContent ?? ''));
    const credentials = await page.locator('#test-result [data-check=credentials]').innerText();
    t.match(credentials, /failed/, 'the credentials check failed');
    t.match(credentials, /InvalidAccessKeyId|access key/i, `with its message: ${credentials}`);
    await page.screenshot({ path: join(consoleArtifacts, 'test-connection-failed.png'), fullPage: true });

    // edit: keep the stored secret, put the right access key back, save, test
    await page.getByRole('button', { name: 'Keep the current AWS secret key' }).click();
    await page.getByLabel('AWS access key').fill('CONSOLEKEY');
    await page.getByLabel('Multipart threshold').fill('64');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForFunction(() => /Revision 2/.test(document.querySelector('main')?.innerText ?? ''));
    t.equal(await page.getByLabel('Multipart threshold').inputValue(), '64', 'the edit was saved');
    await page.getByRole('button', { name: 'Test Connection' }).click();
    await page.waitForFunction(() => /Test Connection:\s+ok/.test(document.querySelector('#test-result')?.textContent ?? ''));
    t.pass('after the edit, with the kept secret: ok');

    // narrow screens: no horizontal scrolling
    await page.setViewportSize({ width: 380, height: 800 });
    t.ok(await page.evaluate(() => document.scrollingElement!.scrollWidth <= window.innerWidth + 1), 'readable at 380 px without horizontal scrolling');
    await page.screenshot({ path: join(consoleArtifacts, 'connection-form-narrow.png'), fullPage: true });
    await page.setViewportSize({ width: 1200, height: 900 });

    // the secrets appear nowhere: not in the DOM, not in any response
    await page.goto(rt.url + '/#/connections');
    await page.getByRole('heading', { name: 'Connections' }).waitFor();
    const dom = await page.content();
    const all = await responses();
    for (const s of [secret, wrongSecret]) {
      t.notOk(dom.includes(s), 'no secret in the DOM');
      t.notOk(all.includes(s), 'no secret in any network response');
    }
    t.ok(all.includes('"/awsSecretKey":true'), 'the API says the secret is set');
    t.same(requests.filter((u) => !u.startsWith(rt.url + '/')), [], 'no request leaves the runtime');
    t.same(errors, [], 'no script errors');

    await page.getByRole('button', { name: 'Delete s3-console' }).click();
    await page.getByText('No connections yet.').waitFor();
    t.equal((await rt.api('GET', '/api/v1/connections', ownerToken)).body.connections.length, 0, 'deleted');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    t.equal(await page.evaluate(() => sessionStorage.getItem('quark.token')), null, 'signing out forgets the token');
  });

  t.test('a tenant of a cloud runtime: Test Connection is refused and nothing runs', async (t) => {
    const endpoint = await s3(t);
    const { home, ownerToken } = await initHome(t, { kind: 'cloud', ownerName: 'provider' });
    const rt = await startRuntime(t, home);
    t.equal((await rt.api('POST', '/api/v1/accounts', ownerToken, { name: 'globex', relation: 'tenant' })).status, 201);
    const tenantToken = (await rt.api('POST', '/api/v1/tokens', ownerToken, { name: 'console', account: 'globex' })).body.token as string;
    const { page, errors } = await open(t, rt);
    await signIn(page, tenantToken);
    const facts = await page.locator('dl.facts').innerText();
    t.notMatch(facts, /Owner account/, 'the owner account is not shown to a tenant');
    t.match(facts, /Test Connection\s+not allowed: this runtime is not associated with your account/);

    await page.goto(rt.url + '/#/connections/new/amazon-s3');
    await page.getByRole('heading', { name: 'New Amazon S3 connection' }).waitFor();
    await page.getByLabel('Name').fill('theirs');
    await page.getByLabel('AWS access key').fill('CONSOLEKEY');
    await page.getByLabel('AWS secret key').fill(secret);
    await page.getByLabel('Amazon S3 bucket').fill('console');
    await page.getByLabel('Endpoint URL').fill(endpoint);
    t.match(await page.locator('#test-not-allowed').innerText(), /not associated/);
    await page.getByRole('button', { name: 'Test Connection' }).click();
    await page.locator('#test-refused').waitFor();
    t.match(await page.locator('#test-refused').innerText(), /Test Connection refused: .*not associated/, 'the refusal message is shown');
    t.equal(await page.locator('#test-result').count(), 0, 'no result');
    await page.screenshot({ path: join(consoleArtifacts, 'test-connection-refused.png'), fullPage: true });
    t.equal(await metric(rt, 'refused'), 1, 'the runtime counted one refusal');
    t.equal((await metric(rt, 'ok')) + (await metric(rt, 'failed')) + (await metric(rt, 'warning')) + (await metric(rt, 'invalid')), 0, 'and ran no test');
    t.same(errors, [], 'no script errors');
  });

  t.test('an execution that ends while its page reads it is shown ended, not stuck in-process (five times)', async (t) => {
    const { home, ownerToken } = await initHome(t, { kind: 'atom', config: { plugins: { paths: [join(fixturePlugins, 'process-kit')] } } });
    const rt = await startRuntime(t, home);
    const dir = tempDir(t, 'quark-console-race-');
    t.equal((await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'kit', connector: 'process-kit', config: {} })).status, 201);
    const { page, errors } = await open(t, rt);
    await signIn(page, ownerToken);
    await page.waitForFunction(() => document.body.dataset.events === 'live');
    const events = await openEvents(rt.url, ownerToken);
    t.teardown(() => events.cancel());
    for (let round = 1; round <= 5; round++) {
      const release = join(dir, `release-${round}`);
      const nap = { id: `nap-${round}`, name: 'nap', start: { kind: 'none', next: 'nap' }, steps: [{ id: 'nap', kind: 'operation', connection: 'kit', operation: 'sleep', parameters: { ms: 600_000, release } }] };
      t.equal((await rt.api('POST', '/api/v1/deployments', ownerToken, nap)).status, 201);
      const id = (await rt.api('POST', '/api/v1/executions', ownerToken, { process: nap.id })).body.id as string;
      await events.next((e) => e.id === id && e.status === 'in-process');
      // the page's first read of the execution is answered while it runs, and that answer
      // reaches the page only after the execution ended and the end event was sent
      let held = true;
      let reads = 0;
      await page.route(`**/api/v1/executions/${id}`, async (route) => {
        reads++;
        if (!held) return route.continue();
        held = false;
        const stale = await route.fetch();
        const body = await stale.text();
        writeFileSync(release, '');
        await events.next((e) => e.id === id && e.status === 'complete');
        await route.fulfill({ response: stale, body });
      });
      await page.goto(`${rt.url}/#/executions/${id}`);
      await page.getByRole('heading', { name: `Execution ${id}` }).waitFor();
      await page.waitForFunction(() => /^complete/.test(document.querySelector('#execution-status')?.textContent ?? ''));
      t.ok(!held && reads >= 1, `round ${round}: the page read the execution while it ran and shows it complete`);
      await page.unroute(`**/api/v1/executions/${id}`);
    }
    t.same(errors, [], 'no script errors');
  });

  t.test('deploy the example process, run it, watch the execution complete live, read its log', async (t) => {
    const { home, ownerToken } = await initHome(t, { kind: 'atom', config: { plugins: { paths: [join(fixturePlugins, 'process-kit')] } } });
    const rt = await startRuntime(t, home);
    const { page, errors } = await open(t, rt);
    await signIn(page, ownerToken);
    await page.getByRole('link', { name: 'Deployments' }).click();
    await page.getByRole('heading', { name: 'Deployments' }).waitFor();

    // server-side validation errors, by path
    await page.getByLabel('or paste it (JSON)').fill(JSON.stringify({ id: 'Bad Id', start: { kind: 'documents' } }));
    await page.getByRole('button', { name: 'Deploy' }).click();
    await page.locator('#definition-problems li').first().waitFor();
    const problems = await page.locator('#definition-problems').innerText();
    t.match(problems, /QUARK_ERR_PROCESS_INVALID/);
    t.match(problems, /\/id /, 'problems are listed by path');

    const definition = readFileSync(join(root, 'processes', 'orders-no-connector.json'), 'utf8');
    await page.getByLabel('or paste it (JSON)').fill(definition);
    await page.getByRole('button', { name: 'Deploy' }).click();
    await page.getByRole('link', { name: 'orders-no-connector' }).waitFor();
    await page.screenshot({ path: join(consoleArtifacts, 'deployments.png'), fullPage: true });

    // the executions list updates live: an execution started elsewhere appears and completes
    await page.getByRole('link', { name: 'Executions' }).click();
    await page.getByRole('heading', { name: 'Executions' }).waitFor();
    await page.waitForFunction(() => document.body.dataset.events === 'live');
    const sample = readFileSync(join(root, 'processes', 'orders-sample.json'), 'utf8');
    const started = await rt.api('POST', '/api/v1/executions', ownerToken, { process: 'orders-no-connector', documents: [{ body: sample }] });
    t.equal(started.status, 202);
    const row = page.locator(`tr[data-execution="${started.body.id}"]`);
    await row.waitFor();
    await page.waitForFunction((id) => /complete/.test(document.querySelector(`tr[data-execution="${id}"]`)?.textContent ?? ''), started.body.id);
    t.match(await row.innerText(), /orders-no-connector/, 'the list updated without a reload');
    await page.screenshot({ path: join(consoleArtifacts, 'executions.png'), fullPage: true });

    // run now from the process page, watch it reach complete on its page, open its log
    await page.getByRole('link', { name: 'Deployments' }).click();
    await page.getByRole('link', { name: 'orders-no-connector' }).click();
    await page.getByLabel('Document body').fill(sample);
    await page.getByRole('button', { name: 'Run now' }).click();
    await page.getByRole('heading', { name: /^Execution exe_/ }).waitFor();
    await page.waitForFunction(() => /^complete/.test(document.querySelector('#execution-status')?.textContent ?? ''));
    const detail = await page.locator('#execution-detail').innerText();
    t.match(detail, /Trigger\s+manual/);
    t.notMatch(detail, /\b(null|undefined)\b/, 'no stray null or undefined on the page');
    t.match(detail, /split-orders\s+1\s+4\s+0/, 'per-step counts');
    await page.waitForFunction(() => /execution ended/.test(document.querySelector('#execution-log')?.textContent ?? ''));
    t.match(await page.locator('#execution-log').innerText(), /execution started/, 'the log is shown');
    await page.screenshot({ path: join(consoleArtifacts, 'execution.png'), fullPage: true });

    // a new version, a rollback, an undeploy
    await page.getByRole('link', { name: 'Deployments' }).click();
    await page.getByLabel('or paste it (JSON)').fill(JSON.stringify({ ...JSON.parse(definition), name: 'Orders, second version' }));
    await page.getByRole('button', { name: 'Deploy' }).click();
    await page.getByRole('cell', { name: 'Orders, second version' }).waitFor();
    await page.getByRole('link', { name: 'orders-no-connector' }).click();
    await page.getByRole('button', { name: 'Roll back to 1' }).click();
    await page.waitForFunction(() => /Active version\s+3/.test(document.querySelector('dl.facts')?.innerText ?? ''));
    t.match(await page.locator('dl.facts').innerText(), /Name\s+Orders: split/, 'rolled back: version 3 is version 1\'s definition');
    await page.getByRole('button', { name: 'Undeploy' }).click();
    await page.waitForFunction(() => /none \(undeployed\)/.test(document.querySelector('dl.facts')?.innerText ?? ''));
    t.ok(await page.getByRole('button', { name: 'Run now' }).isDisabled(), 'an undeployed process cannot be run');

    // cancel a running execution from its page
    t.equal((await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'kit', connector: 'process-kit', config: {} })).status, 201);
    const slow = { id: 'slow', name: 'slow', start: { kind: 'none', next: 'nap' }, steps: [{ id: 'nap', kind: 'operation', connection: 'kit', operation: 'sleep', parameters: { ms: 60000 } }] };
    t.equal((await rt.api('POST', '/api/v1/deployments', ownerToken, slow)).status, 201);
    const sleeping = (await rt.api('POST', '/api/v1/executions', ownerToken, { process: 'slow' })).body.id;
    await page.goto(`${rt.url}/#/executions/${sleeping}`);
    await page.waitForFunction(() => /in-process/.test(document.querySelector('#execution-status')?.textContent ?? ''));
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.waitForFunction(() => /aborted/.test(document.querySelector('#execution-status')?.textContent ?? ''));
    t.match(await page.locator('#execution-detail').innerText(), /QUARK_ERR_EXECUTION_CANCELLED/, 'cancelled: aborted, with the reason');

    // filters: by status
    await page.goto(rt.url + '/#/executions?status=error');
    await page.getByRole('heading', { name: 'Executions' }).waitFor();
    t.equal(await page.locator('#executions-body tr').count(), 0, 'the status filter applies');
    await page.getByLabel('Status').selectOption('aborted');
    await page.locator(`tr[data-execution="${sleeping}"]`).waitFor();
    t.equal(await page.locator('#executions-body tr').count(), 1, 'only the aborted execution');
    t.same(errors, [], 'no script errors');
  });
  t.test('a stored schedule the runtime cannot arm is shown on the deployments pages as a load problem', async (t) => {
    const { home, ownerToken } = await initHome(t, { kind: 'atom' });
    const first = await startRuntime(t, home);
    const definition = JSON.parse(readFileSync(join(root, 'processes', 'orders-no-connector.json'), 'utf8'));
    t.equal((await first.api('POST', '/api/v1/deployments', ownerToken, definition)).status, 201);
    t.equal(await first.stop(), 0);
    // what an older version of quark stored: a time zone the scheduler cannot arm
    const db = new Database(join(home, 'quark.db'));
    db.prepare('UPDATE processes SET schedules = ? WHERE process_id = ?').run(JSON.stringify([{ cron: '0 * * * *', timezone: 'Mars/Base' }]), definition.id);
    db.close();
    const rt = await startRuntime(t, home);
    const { page, errors } = await open(t, rt);
    await signIn(page, ownerToken);
    await page.getByRole('link', { name: 'Deployments' }).click();
    await page.getByRole('heading', { name: 'Deployments' }).waitFor();
    t.match(await page.locator('main').innerText(), /1 problem\(s\)/, 'the list marks the process');
    await page.getByRole('link', { name: definition.id }).click();
    const section = page.getByRole('region', { name: 'Load problems' });
    await section.waitFor();
    const text = await section.innerText();
    t.match(text, /\/schedules\/0 QUARK_ERR_SCHEDULE_INVALID/, 'the problem by its pointer and code');
    t.match(text, /Mars\/Base/, 'and why');
    t.same(errors, [], 'no script errors');
  });
}
