/**
 * The operator pages of the console in a real browser (see browser.ts): tokens (shown
 * once, revoked), accounts (the owner's), schedules (a bad time zone refused at its
 * field), the runtime's queue, the unsaved-changes guard of the forms, search and paging of the
 * lists (a searched list keeps the newest view of an execution over an older read).
 */
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixturePlugins, initHome, root, startRuntime, tempDir } from '../helpers/quark.js';
import { openEvents } from '../helpers/events.js';
import { consoleArtifacts, launchBrowser, openConsole, signIn } from '../helpers/browser.js';

declare const document: any;

const browser = await launchBrowser(t, 'the console pages');

/** One runtime with the process-kit plugin and its connection "kit", shared by the tests that need it (one per file). */
let kitRuntime: Promise<{ rt: Awaited<ReturnType<typeof startRuntime>>; ownerToken: string }> | undefined;
function withKit() {
  kitRuntime ??= (async () => {
    const { home, ownerToken } = await initHome(t, { config: { plugins: { paths: [join(fixturePlugins, 'process-kit')] } } });
    const rt = await startRuntime(t, home);
    const kit = await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'kit', connector: 'process-kit', config: {} });
    if (kit.status !== 201) throw new Error(`the connection "kit" was not made: ${JSON.stringify(kit.body)}`);
    return { rt, ownerToken };
  })();
  return kitRuntime;
}

if (browser) {
  t.test('owner of a cloud runtime: tokens, accounts, the queue on the runtime page', async (t) => {
    const { home, ownerToken } = await initHome(t, { kind: 'cloud', ownerName: 'provider' });
    const rt = await startRuntime(t, home);
    const { page, errors } = await openConsole(t, browser, rt);
    await signIn(page, ownerToken);
    t.match(await page.locator('#runtime-queue').innerText(), /^0 running \(at most \d+\), 0 queued \(at most \d+\)$/, 'the queue depth with its limits');
    const { limits } = (await rt.api('GET', '/api/v1/runtime', ownerToken)).body;
    t.equal(await page.locator('dd .badge').first().innerText(), 'ready', 'the health');
    for (const name of ['maxRunningExecutions', 'maxQueuedExecutions', 'executionTimeoutMs']) {
      t.equal(await page.locator('tr', { has: page.locator(`td:text-is("${name}")`) }).locator('td').nth(1).innerText(), String(limits[name]), `the limit ${name} in the limits table`);
    }

    // tokens: a name is required, at the field by its title
    await page.getByRole('link', { name: 'Tokens' }).click();
    await page.getByRole('heading', { name: 'Tokens', level: 1 }).waitFor();
    await page.getByRole('button', { name: 'Create token' }).click();
    t.equal(await page.locator('[data-field-wrap=name] .field-error').innerText(), '"Token name" is required');
    t.equal(await page.evaluate(() => document.activeElement?.name), 'name', 'the invalid field has the focus');
    await page.getByLabel('Token name').fill('ci');
    await page.getByRole('button', { name: 'Create token' }).click();
    const shown = (await page.locator('#token-value').innerText()).trim();
    t.match(shown, /^qk_/, 'the new token is shown');
    t.equal((await rt.api('GET', '/api/v1/whoami', shown)).status, 200, 'and it works');
    await page.screenshot({ path: join(consoleArtifacts, 'tokens.png'), fullPage: true });
    await page.reload();
    await page.getByRole('heading', { name: 'Tokens', level: 1 }).waitFor();
    await page.locator('tr', { hasText: 'ci' }).first().waitFor();
    t.notOk((await page.content()).includes(shown), 'shown once: not on the page again');
    await page.getByRole('button', { name: 'Revoke ci' }).click();
    await page.locator('tr', { hasText: 'ci' }).getByText('revoked').waitFor();
    t.equal((await rt.api('GET', '/api/v1/whoami', shown)).status, 401, 'revoked');

    // accounts: a tenant added, a taken name and a bad name refused at the field
    await page.getByRole('link', { name: 'Accounts' }).click();
    await page.getByRole('heading', { name: 'Accounts', level: 1 }).waitFor();
    await page.getByLabel('Account name').fill('globex');
    await page.getByLabel('Relation').selectOption('tenant');
    await page.getByRole('button', { name: 'Add account' }).click();
    await page.getByRole('cell', { name: 'globex' }).waitFor();
    t.match(await page.locator('#status').innerText(), /Added the tenant account globex/);
    await page.getByLabel('Account name').fill('globex');
    await page.getByRole('button', { name: 'Add account' }).click();
    await page.locator('[data-field-wrap=name] .field-error:not([hidden])').waitFor();
    t.equal(await page.locator('[data-field-wrap=name] .field-error').innerText(), '"Account name" is taken', 'a taken name, at the name field, by its title');
    t.match(await page.locator('#status').innerText(), /an account named "globex" already exists \(QUARK_ERR_ACCOUNT_EXISTS\)/, 'the status line names it');
    await page.getByLabel('Account name').fill('no/slashes');
    await page.getByRole('button', { name: 'Add account' }).click();
    await page.waitForFunction(() => /expected form/.test(document.querySelector('[data-field-wrap=name] .field-error')?.textContent ?? ''));
    t.match(await page.locator('[data-field-wrap=name] .field-error').innerText(), /^"Account name" is not in the expected form/, 'the runtime\'s problem, by the field\'s title');
    await page.screenshot({ path: join(consoleArtifacts, 'accounts.png'), fullPage: true });

    // the token page of the owner offers every account
    await page.getByRole('link', { name: 'Tokens' }).click();
    await page.getByLabel('Token name').fill('for-globex');
    await page.getByLabel('Account').selectOption({ label: 'globex (tenant)' });
    await page.getByRole('button', { name: 'Create token' }).click();
    const tenantToken = (await page.locator('#token-value').innerText()).trim();
    t.equal((await rt.api('GET', '/api/v1/whoami', tenantToken)).body.account.name, 'globex', 'a token of another account');

    // a tenant: no Accounts in the nav, only its own tokens
    const tenant = await openConsole(t, browser, rt);
    await signIn(tenant.page, tenantToken);
    t.notOk(await tenant.page.getByRole('link', { name: 'Accounts' }).isVisible(), 'a tenant has no Accounts link');
    await tenant.page.getByRole('link', { name: 'Tokens' }).click();
    await tenant.page.getByRole('heading', { name: 'Tokens', level: 1 }).waitFor();
    t.equal(await tenant.page.locator('tbody tr').count(), 1, 'its own token only');
    t.equal(await tenant.page.getByLabel('Account').count(), 0, 'and no account to choose');
    t.same([...errors, ...tenant.errors], [], 'no script errors');
  });

  t.test('schedules: a bad time zone and a bad cron refused at their fields, then set with the next runs, then cleared; unsaved changes hold the page', async (t) => {
    const { home, ownerToken } = await initHome(t);
    const rt = await startRuntime(t, home);
    const definition = JSON.parse(readFileSync(join(root, 'processes', 'orders-no-connector.json'), 'utf8'));
    t.equal((await rt.api('POST', '/api/v1/deployments', ownerToken, definition)).status, 201);
    const { page, errors, dialogs, answer } = await openConsole(t, browser, rt);
    await signIn(page, ownerToken);
    await page.getByRole('link', { name: 'Schedules' }).click();
    await page.getByRole('heading', { name: 'Schedules', level: 1 }).waitFor();
    t.match(await page.locator(`tr[data-process="${definition.id}"]`).innerText(), /none/, 'listed, not scheduled');
    await page.getByRole('link', { name: `Edit the schedules of ${definition.id}` }).click();
    await page.getByRole('heading', { name: `Schedules of ${definition.id}` }).waitFor();
    await page.getByRole('button', { name: 'Add a schedule' }).click();
    await page.getByLabel('Cron expression').fill('0 * * * *');
    await page.getByLabel('Time zone').fill('Mars/Base');
    await page.getByRole('button', { name: 'Save schedules' }).click();
    const zoneError = page.locator('[data-field-wrap=timezone-0] .field-error');
    await page.waitForFunction(() => !document.querySelector('[data-field-wrap=timezone-0] .field-error')?.hidden);
    t.match(await zoneError.innerText(), /^"Time zone" is not a time zone the scheduler knows/, 'refused at the time zone field, by its title');
    t.match(await page.locator('#status').innerText(), /QUARK_ERR_SCHEDULE_INVALID/);
    t.equal(await page.evaluate(() => document.activeElement?.name), 'timezone-0', 'the field has the focus');
    await page.screenshot({ path: join(consoleArtifacts, 'schedule-refused.png'), fullPage: true });
    t.same((await rt.api('GET', `/api/v1/deployments/${definition.id}`, ownerToken)).body.schedules, [], 'nothing stored');

    await page.getByLabel('Time zone').fill('Europe/Paris');
    await page.getByLabel('Cron expression').fill('every hour');
    await page.getByRole('button', { name: 'Save schedules' }).click();
    await page.waitForFunction(() => !document.querySelector('[data-field-wrap=cron-0] .field-error')?.hidden);
    t.match(await page.locator('[data-field-wrap=cron-0] .field-error').innerText(), /^"Cron expression" is not a cron expression/, 'a bad cron at its field');

    // unsaved: leaving by the nav asks; "stay" keeps the page and the edit
    answer.accept = false;
    // the confirm comes from the hashchange handler, after the click has returned: wait for it
    const confirmShown = page.waitForEvent('dialog');
    await page.getByRole('link', { name: 'Tokens' }).click();
    await confirmShown;
    t.match(dialogs.at(-1) ?? '', /^confirm: This page has unsaved changes/, 'leaving asks first');
    t.match(await page.evaluate(() => document.location.hash), /^#\/schedules\//, 'and stays');
    t.equal(await page.getByLabel('Cron expression').inputValue(), 'every hour', 'with the edit');
    answer.accept = true;

    await page.getByLabel('Cron expression').fill('30 6 * * *');
    await page.getByRole('button', { name: 'Save schedules' }).click();
    await page.waitForFunction(() => /Saved 1 schedule/.test(document.getElementById('status')?.textContent ?? ''));
    const next = await page.locator('#next-runs').innerText();
    t.match(next, /30 6 \* \* \* \(Europe\/Paris\): /, 'the schedule with its next run');
    t.notMatch(next, /not armed/);
    const stored = (await rt.api('GET', `/api/v1/deployments/${definition.id}`, ownerToken)).body;
    t.same(stored.schedules, [{ cron: '30 6 * * *', timezone: 'Europe/Paris' }], 'stored');
    t.equal(new Date(stored.nextRuns[0]).toLocaleString('en-GB', { timeZone: 'Europe/Paris', hour: '2-digit', minute: '2-digit' }), '06:30', 'next run at 06:30 in Paris');
    await page.screenshot({ path: join(consoleArtifacts, 'schedules.png'), fullPage: true });
    const dialogsBefore = dialogs.length;
    await page.getByRole('link', { name: 'Back to schedules' }).click();
    await page.getByRole('heading', { name: 'Schedules', level: 1 }).waitFor();
    t.equal(dialogs.length, dialogsBefore, 'saved: leaving does not ask');

    await page.getByRole('link', { name: `Edit the schedules of ${definition.id}` }).click();
    await page.getByRole('button', { name: 'Clear schedules' }).click();
    await page.waitForFunction(() => /Cleared the schedules/.test(document.getElementById('status')?.textContent ?? ''));
    t.same((await rt.api('GET', `/api/v1/deployments/${definition.id}`, ownerToken)).body.schedules, [], 'cleared');

    // unsaved changes and a reload or close: the browser's leave dialog
    await page.getByRole('button', { name: 'Add a schedule' }).click();
    await page.keyboard.type('0 0 * * *');
    const asked = page.waitForEvent('dialog');
    await page.close({ runBeforeUnload: true });
    t.equal((await asked).type(), 'beforeunload', 'closing with unsaved changes asks');
    t.same(errors, [], 'no script errors');
  });

  t.test('search and paging of connections, deployments and executions', async (t) => {
    const { home, ownerToken } = await initHome(t);
    const rt = await startRuntime(t, home);
    const folder = tempDir(t);
    const names = Array.from({ length: 27 }, (_, i) => `conn-${String(i).padStart(2, '0')}`);
    for (const name of names) t.equal((await rt.api('POST', '/api/v1/connections', ownerToken, { name, connector: 'local-files', config: { folder } })).status, 201);
    const definition = JSON.parse(readFileSync(join(root, 'processes', 'orders-no-connector.json'), 'utf8'));
    const processes = Array.from({ length: 26 }, (_, i) => `proc-${String(i).padStart(2, '0')}`);
    for (const id of processes) t.equal((await rt.api('POST', '/api/v1/deployments', ownerToken, { ...definition, id })).status, 201);
    const executions: string[] = [];
    for (let i = 0; i < 26; i++) executions.push((await rt.api('POST', '/api/v1/executions', ownerToken, { process: processes[i % 2]!, wait: true })).body.id);
    const { page, errors } = await openConsole(t, browser, rt);
    await signIn(page, ownerToken);
    const cells = (selector: string) => page.locator(selector).allInnerTexts();

    await page.getByRole('link', { name: 'Connections' }).click();
    await page.getByRole('heading', { name: 'Connections', level: 1 }).waitFor();
    t.same(await cells('tbody tr td:first-child'), names.slice(0, 25), 'the first page: 25, by name');
    await page.getByRole('link', { name: 'Next page' }).click();
    await page.getByRole('cell', { name: 'conn-26', exact: true }).waitFor();
    t.same(await cells('tbody tr td:first-child'), names.slice(25), 'the next page: the rest');
    t.equal(await page.getByRole('link', { name: 'Next page' }).count(), 0, 'no page after the last');
    await page.getByRole('link', { name: 'First page' }).click();
    await page.getByRole('cell', { name: 'conn-00', exact: true }).waitFor();
    await page.getByLabel('Search connections').fill('CONN-1');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 10);
    t.same(await cells('tbody tr td:first-child'), names.slice(10, 20), 'search, ignoring case');
    t.match(await page.evaluate(() => document.location.hash), /^#\/connections\?q=CONN-1$/, 'the search is in the address');

    await page.getByRole('link', { name: 'Deployments' }).click();
    await page.getByRole('heading', { name: 'Deployments', level: 1 }).waitFor();
    t.equal(await page.locator('tbody tr').count(), 25);
    await page.getByRole('link', { name: 'Next page' }).click();
    await page.getByRole('link', { name: 'proc-25' }).waitFor();
    t.equal(await page.locator('tbody tr').count(), 1, 'deployments: the second page');

    await page.getByRole('link', { name: 'Executions' }).click();
    await page.getByRole('heading', { name: 'Executions', level: 1 }).waitFor();
    const newest = [...executions].reverse();
    t.same(await page.locator('#executions-body tr').evaluateAll((rows) => rows.map((r: any) => r.dataset.execution)), newest.slice(0, 25), 'executions: newest first');
    await page.getByRole('link', { name: 'Next page' }).click();
    await page.locator(`tr[data-execution="${newest[25]}"]`).waitFor();
    t.equal(await page.locator('#executions-body tr').count(), 1, 'and the oldest on the next page');
    await page.locator('#filter-process').selectOption('proc-01');
    await page.waitForFunction(() => document.querySelectorAll('#executions-body tr').length === 13);
    t.equal(await page.getByRole('link', { name: 'Next page' }).count(), 0, 'a filter starts again at the first page');
    await page.getByLabel('Search executions').fill(executions[3]!);
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelectorAll('#executions-body tr').length === 1);
    t.equal(await page.locator('#executions-body tr').getAttribute('data-execution'), executions[3], 'search by id, within the filter');
    t.match(await page.evaluate(() => document.location.hash), /process=proc-01/, 'the filter is kept');
    await page.screenshot({ path: join(consoleArtifacts, 'executions-search.png'), fullPage: true });
    t.same(errors, [], 'no script errors');
  });

  t.test('a searched executions list: an execution that ends while the list is read is shown ended, not stuck in-process', async (t) => {
    const { rt, ownerToken } = await withKit();
    const release = join(tempDir(t, 'quark-console-list-race-'), 'release');
    const nap = { id: 'nap', name: 'nap', start: { kind: 'none', next: 'nap' }, steps: [{ id: 'nap', kind: 'operation', connection: 'kit', operation: 'sleep', parameters: { ms: 600_000, release } }] };
    t.equal((await rt.api('POST', '/api/v1/deployments', ownerToken, nap)).status, 201);
    const events = await openEvents(rt.url, ownerToken);
    t.teardown(() => events.cancel());
    const id = (await rt.api('POST', '/api/v1/executions', ownerToken, { process: 'nap' })).body.id as string;
    await events.next((e) => e.id === id && e.status === 'in-process');
    const { page, errors } = await openConsole(t, browser, rt);
    await signIn(page, ownerToken);
    await page.waitForFunction(() => document.body.dataset.events === 'live');
    // the page's read of the list is answered while the execution runs, and that answer
    // reaches the page only after the execution ended and the page had its end event
    let held = true;
    await page.route((url) => url.pathname === '/api/v1/executions', async (route) => {
      if (!held) return route.continue();
      held = false;
      const stale = await route.fetch();
      const body = await stale.text();
      writeFileSync(release, '');
      await events.next((e) => e.id === id && e.status === 'complete');
      await route.fulfill({ response: stale, body });
    });
    await page.goto(`${rt.url}/#/executions?q=NAP`);
    await page.locator(`tr[data-execution="${id}"]`).waitFor();
    await page.waitForFunction((id: string) => (document.querySelector(`tr[data-execution="${id}"]`)?.textContent ?? '').includes('complete'), id);
    t.notOk(held, 'the page read the list while the execution ran');
    t.match(await page.locator(`tr[data-execution="${id}"]`).innerText(), /complete/, 'and shows it complete: the end event it had first wins over the older read');
    t.same(errors, [], 'no script errors');
  });

  t.test('run one operation of a saved connection: the parameters form from its schema, results, output documents, errors', async (t) => {
    const { rt, ownerToken } = await withKit();
    const { page, errors } = await openConsole(t, browser, rt);
    await signIn(page, ownerToken);
    await page.getByRole('link', { name: 'Operations' }).click();
    await page.getByRole('heading', { name: 'Operations', level: 1 }).waitFor();
    await page.locator('#op-operation').selectOption('echo');
    await page.locator('input[name=tag]').waitFor();
    t.equal(await page.locator('input[name=times]').inputValue(), '1', 'the schema\'s default');

    // checked in the browser first, with the runtime's wording
    await page.locator('input[name=times]').fill('11');
    await page.getByRole('button', { name: /^Run / }).click();
    t.match(await page.locator('[data-field-wrap=tag] .field-error').innerText(), /"tag" is required/, 'a required parameter');
    t.match(await page.locator('[data-field-wrap=times] .field-error').innerText(), /"times" must be at most 10/, 'a limit');

    await page.locator('input[name=tag]').fill('hi');
    await page.locator('input[name=times]').fill('2');
    await page.locator('#op-body').fill('{"order":"A-1"}');
    await page.locator('#op-properties').fill('source=console');
    await page.getByRole('button', { name: /^Run / }).click();
    await page.locator('#op-results [data-result]').first().waitFor();
    const result = await page.locator('#op-results').innerText();
    t.match(result, /echo \(process-kit\): 1 result\(s\)/);
    t.match(result, /success/);
    t.equal(await page.locator('#op-results .output-document').count(), 2, 'two output documents');
    t.match(await page.locator('#op-results .output-document').first().innerText(), /echo\.tag\s+hi/, 'with their properties');
    t.equal(await page.locator('#op-results .doc-body.json').first().innerText(), '{\n  "order": "A-1"\n}', 'a JSON body pretty-printed');
    await page.screenshot({ path: join(consoleArtifacts, 'operation-run.png'), fullPage: true });

    // a binary body: size and hex
    await page.locator('input[name=times]').fill('1');
    await page.locator('#op-body').fill('');
    await page.locator('#op-file').setInputFiles({ name: 'logo.bin', mimeType: 'application/octet-stream', buffer: Buffer.from([0, 1, 2, 0xff]) });
    await page.getByRole('button', { name: /^Run / }).click();
    await page.locator('#op-results .doc-body.binary').waitFor();
    t.equal(await page.locator('#op-results .doc-body.binary').innerText(), 'binary, 4 bytes: 00 01 02 ff', 'a binary body as size and hex');

    // a failed result, with its message
    await page.locator('#op-operation').selectOption('flaky');
    await page.locator('input[name=marker]').waitFor();
    await page.locator('input[name=marker]').fill(join(tempDir(t), 'marker'));
    await page.getByRole('button', { name: /^Run / }).click();
    await page.locator('#op-results [data-result=failure]').waitFor();
    t.match(await page.locator('#op-results [data-result=failure]').innerText(), /flaky: the first attempt fails/, 'the failure and its message');
    t.same(errors, [], 'no script errors');
  });
}
