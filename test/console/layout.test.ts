/**
 * The console's layout in a real browser (see browser.ts): nothing signed-in shows while
 * signed out, the status line never moves the page, tables become cards on a phone, and
 * every page fits 380 px without sideways scrolling.
 */
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { initHome, root, startRuntime, tempDir } from '../helpers/quark.js';
import { consoleArtifacts, launchBrowser, openConsole, scrollsSideways, signIn, type Page } from '../helpers/browser.js';

declare const document: any, window: any;

const browser = await launchBrowser(t, 'the console layout');
if (browser) {
  t.test('signed out: no nav and no Sign out; the status line does not move the page', async (t) => {
    const { home, ownerToken } = await initHome(t);
    const rt = await startRuntime(t, home);
    const { page, errors } = await openConsole(t, browser, rt);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    t.notOk(await page.locator('#nav').isVisible(), 'the nav is hidden');
    t.notOk(await page.getByRole('button', { name: 'Sign out' }).isVisible(), 'Sign out is hidden');
    const top = () => page.evaluate(() => document.getElementById('main').getBoundingClientRect().top);
    const before = await top();
    await page.keyboard.type('qk_not-a-token');
    await page.keyboard.press('Enter');
    await page.locator('#token-error').waitFor();
    t.equal(await top(), before, 'an error at the field does not move the page top');
    await page.getByLabel('Account token').fill('');
    await signIn(page, ownerToken);
    t.ok(await page.locator('#nav').isVisible(), 'signed in: the nav shows');
    const signedIn = await top();
    await page.evaluate(() => {
      document.getElementById('status').textContent = 'a long message '.repeat(40);
    });
    t.equal(await top(), signedIn, 'a message over several lines does not move the page');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    t.equal(await page.locator('#status').innerText(), 'Signed out.', 'a status message is shown');
    t.equal(await top(), before, 'and the sign-in page is where it was without one');
    t.notOk(await page.locator('#nav').isVisible(), 'signed out again: the nav is hidden');
    t.notOk(await page.getByRole('button', { name: 'Sign out' }).isVisible(), 'and Sign out');
    t.same(errors, [], 'no script errors');
  });

  t.test('every page at 380 px: no sideways scrolling, tables as cards, the Test Connection result scrolled into view', async (t) => {
    const { home, ownerToken } = await initHome(t);
    const rt = await startRuntime(t, home);
    const folder = tempDir(t, 'quark-console-files-');
    const connection = await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'a-connection-with-a-rather-long-name-for-a-phone', connector: 'local-files', config: { folder } });
    t.equal(connection.status, 201);
    const definition = JSON.parse(readFileSync(join(root, 'processes', 'orders-no-connector.json'), 'utf8'));
    t.equal((await rt.api('POST', '/api/v1/deployments', ownerToken, definition)).status, 201);
    const sample = readFileSync(join(root, 'processes', 'orders-sample.json'), 'utf8');
    const run = await rt.api('POST', '/api/v1/executions', ownerToken, { process: definition.id, documents: [{ body: sample }], wait: true });
    t.match(run.body.status, /^complete/);

    const { page, errors } = await openConsole(t, browser, rt, { width: 380, height: 640 });
    t.notOk(await scrollsSideways(page), 'the sign-in page fits');
    await signIn(page, ownerToken);
    const pages: [string, string | RegExp][] = [
      ['#/runtime', /^Runtime /],
      ['#/connectors', 'Connectors'],
      ['#/connections', 'Connections'],
      [`#/connections/${connection.body.id}`, /^Connection /],
      ['#/connections/new/local-files', 'New Local Files connection'],
      ['#/deployments', 'Deployments'],
      [`#/deployments/${definition.id}`, /^Process /],
      ['#/executions', 'Executions'],
      [`#/executions/${run.body.id}`, /^Execution /],
      ['#/schedules', 'Schedules'],
      [`#/schedules/${definition.id}`, /^Schedules of /],
      ['#/tokens', 'Tokens'],
      ['#/accounts', 'Accounts'],
      ['#/operations', 'Operations'],
      ['#/editor', 'New process'],
      [`#/editor/${definition.id}`, /^Edit /],
    ];
    for (const [hash, heading] of pages) {
      await page.goto(`${rt.url}/${hash}`);
      await page.getByRole('heading', { name: heading, level: 1 }).waitFor();
      if (hash.startsWith('#/editor')) await page.locator('.diagram[data-ready=true]').waitFor(); // the editor and its diagram drawn
      t.notOk(await scrollsSideways(page), `${hash} fits 380 px`);
      await page.screenshot({ path: join(consoleArtifacts, `narrow-${hash.slice(2).split('/')[0]}.png`), fullPage: true });
    }

    // the connections table is one card per connection, with Delete on screen
    await page.goto(`${rt.url}/#/connections`);
    await page.getByRole('heading', { name: 'Connections', level: 1 }).waitFor();
    t.equal(await page.locator('.table-wrap tr').first().evaluate((tr) => window.getComputedStyle(tr).display), 'block', 'a row is a card');
    const cell = page.locator('.table-wrap tbody tr td[data-label="connector"]').first();
    t.equal(await cell.innerText(), 'local-files', 'each cell is named by its column');
    t.match(await cell.evaluate((td) => window.getComputedStyle(td, '::before').content), /connector/, 'and shows the name on the card');
    const del = await page.getByRole('button', { name: /^Delete / }).boundingBox();
    t.ok(del && del.x >= 0 && del.x + del.width <= 380, 'Delete is on screen');
    await page.goto(`${rt.url}/#/executions`);
    await page.getByRole('heading', { name: 'Executions', level: 1 }).waitFor();
    const badge = await page.locator('#executions-body .badge').first().boundingBox();
    t.ok(badge && badge.x + badge.width <= 380, 'the execution status is on screen');

    // Test Connection below the fold: its result is scrolled into view
    await page.goto(`${rt.url}/#/connections/${connection.body.id}`);
    await page.getByRole('heading', { name: /^Connection / }).waitFor();
    await page.getByRole('button', { name: 'Test Connection' }).click();
    await page.locator('#test-result').waitFor();
    await testResultInView(t, page);
    t.same(errors, [], 'no script errors');
  });
}

async function testResultInView(t: Test, page: Page) {
  const box = await page.evaluate(() => {
    const r = document.getElementById('test-result').getBoundingClientRect();
    return { top: r.top, bottom: r.bottom, height: window.innerHeight, scrolled: window.scrollY };
  });
  t.ok(box.scrolled > 0, 'the page scrolled');
  t.ok(box.top >= 0 && box.top < box.height, `the result is in view (${JSON.stringify(box)})`);
}
