/**
 * An execution watched on its diagram in a real browser: the step counts change on the
 * nodes while it runs (pushed on the event stream, not only at status changes), the log
 * tails and the duration ticks; failed steps are marked with their errors one click
 * away; and the page ends in the right status every time, 20 times, when the execution
 * ends between the page's read and its subscription or ends at once.
 */
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixturePlugins, initHome, root, startRuntime, tempDir } from '../helpers/quark.js';
import { openEvents } from '../helpers/events.js';
import { consoleArtifacts, launchBrowser, openConsole, refreshDocsScreenshot, signIn } from '../helpers/browser.js';

declare const document: any;

const browser = await launchBrowser(t, 'the live execution view');
if (browser) {
  const kit = { plugins: { paths: [join(fixturePlugins, 'process-kit')] } };

  t.test('counts change on the diagram while a slow execution runs; the log tails; the duration ticks', async (t) => {
    const { home, ownerToken } = await initHome(t, { kind: 'atom', config: kit });
    const rt = await startRuntime(t, home);
    const dir = tempDir(t, 'quark-live-');
    t.equal((await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'kit', connector: 'process-kit', config: {} })).status, 201);
    const releases = [join(dir, 'release-1'), join(dir, 'release-2')];
    const slow = {
      id: 'two-naps',
      name: 'Two naps',
      start: { kind: 'none', next: 'first-nap' },
      steps: [
        { id: 'first-nap', kind: 'operation', connection: 'kit', operation: 'sleep', parameters: { ms: 600_000, release: releases[0] }, next: 'half-way' },
        { id: 'half-way', kind: 'notify', level: 'info', message: 'half way there', next: 'second-nap' },
        { id: 'second-nap', kind: 'operation', connection: 'kit', operation: 'sleep', parameters: { ms: 600_000, release: releases[1] }, next: 'done' },
        { id: 'done', kind: 'notify', level: 'info', message: 'all done' },
      ],
    };
    t.equal((await rt.api('POST', '/api/v1/deployments', ownerToken, slow)).status, 201);
    const events = await openEvents(rt.url, ownerToken);
    t.teardown(() => events.cancel());
    const { page, errors } = await openConsole(t, browser, rt);
    await signIn(page, ownerToken);
    const id = (await rt.api('POST', '/api/v1/executions', ownerToken, { process: slow.id })).body.id as string;
    await events.next((e) => e.id === id && e.steps?.['first-nap']?.in === 1);
    await page.goto(`${rt.url}/#/executions/${id}`);
    await page.locator('.diagram[data-ready=true]').waitFor();
    const counts = (step: string) => page.locator(`[data-node="step:${step}"]`).getAttribute('data-counts');
    t.equal(await counts('first-nap'), '1/0/0', 'the first nap has its document in');
    t.equal(await counts('second-nap'), null, 'the second has none yet');
    t.match(await page.locator('#execution-status').innerText(), /in-process/);

    // the duration ticks while nothing else changes
    const before = await page.locator('#execution-duration').innerText();
    await page.waitForFunction((b) => document.querySelector('#execution-duration')?.textContent !== b, before);
    t.pass(`the duration ticks (${before} → ${await page.locator('#execution-duration').innerText()})`);

    // the first nap ends: its counts, the next steps' and the log change on the page
    // while the execution is still in-process (only a count push can say that)
    writeFileSync(releases[0], '');
    await page.waitForFunction(() => document.querySelector('[data-node="step:second-nap"]')?.dataset.counts === '1/0/0');
    t.equal(await counts('first-nap'), '1/1/0', 'the first nap passed its document on');
    t.equal(await counts('half-way'), '1/1/0');
    t.match(await page.locator('#execution-status').innerText(), /in-process/, 'while the execution still runs');
    t.match(await page.locator('[data-node="step:first-nap"] .node-counts').textContent(), /in 1 · out 1/, 'drawn on the node');
    await page.waitForFunction(() => /half way there/.test(document.querySelector('#execution-log')?.textContent ?? ''));
    t.pass('the log tails: the notify line is shown while it runs');
    await page.locator('#diagram-svg').screenshot({ path: join(consoleArtifacts, 'execution-diagram-live.png') });
    refreshDocsScreenshot('execution-diagram-live.png', 'console-diagram-live.png');
    const push = await events.next((e) => e.id === id && e.status === 'in-process' && e.steps?.['second-nap']?.in === 1);
    t.equal(push.steps['first-nap'].out, 1, 'the stream carried a count push between the status changes');
    const seqs = events.seen.filter((e) => e.id === id && e.seq !== undefined).map((e) => e.seq);
    t.same(seqs, [...seqs].sort((a, b) => a - b), 'each event of the execution has a growing seq');

    writeFileSync(releases[1], '');
    await page.waitForFunction(() => /^complete/.test(document.querySelector('#execution-status')?.textContent ?? ''));
    await page.waitForFunction(() => document.querySelector('[data-node="step:done"]')?.dataset.counts === '1/1/0');
    t.equal(await counts('second-nap'), '1/1/0', 'at the end, every step has its counts');
    await page.locator('[data-node="step:second-nap"]').focus();
    await page.keyboard.press('Enter');
    t.match(await page.locator('#panel-counts').innerText(), /1 in, 1 out, 0 error/, 'the panel shows the step\'s counts');
    t.same(errors, [], 'no script errors');
  });

  t.test('failed steps are marked, with their document errors one click away', async (t) => {
    const { home, ownerToken } = await initHome(t, { kind: 'atom' });
    const rt = await startRuntime(t, home);
    const failing = {
      id: 'sometimes-fails',
      name: 'Fails on request',
      start: { kind: 'documents', next: 'check' },
      steps: [
        { id: 'check', kind: 'decision', condition: 'fail = true', ifTrue: 'boom', ifFalse: 'fine' },
        { id: 'boom', kind: 'exception', message: { $expr: '"asked to fail: " & name' } },
        { id: 'fine', kind: 'notify', message: 'fine' },
      ],
    };
    t.equal((await rt.api('POST', '/api/v1/deployments', ownerToken, failing)).status, 201);
    const documents = [{ body: JSON.stringify({ name: 'a', fail: true }) }, { body: JSON.stringify({ name: 'b', fail: false }) }, { body: JSON.stringify({ name: 'c', fail: true }) }];
    const run = await rt.api('POST', '/api/v1/executions', ownerToken, { process: failing.id, documents, wait: true });
    t.equal(run.body.status, 'error');
    const { page, errors } = await openConsole(t, browser, rt);
    await signIn(page, ownerToken);
    await page.goto(`${rt.url}/#/executions/${run.body.id}`);
    await page.locator('.diagram[data-ready=true]').waitFor();
    t.equal(await page.locator('.node.failed').evaluateAll((els) => els.map((e: any) => e.dataset.step).join(',')), 'boom', 'only the failing step is marked');
    t.equal(await page.locator('[data-node="step:boom"]').getAttribute('data-counts'), '2/0/2');
    await page.locator('[data-node="step:boom"]').click();
    const panel = await page.locator('#panel-errors').innerText();
    t.match(panel, /QUARK_ERR_PROCESS_EXCEPTION asked to fail: a/, 'the first document error');
    t.match(panel, /asked to fail: c/, 'and the second');
    t.same(errors, [], 'no script errors');
  });

  t.test('the page ends in the right status every time (20 rounds): an end between read and subscribe, or an execution that ends at once', async (t) => {
    const { home, ownerToken } = await initHome(t, { kind: 'atom', config: kit });
    const rt = await startRuntime(t, home);
    const dir = tempDir(t, 'quark-race-');
    t.equal((await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'kit', connector: 'process-kit', config: {} })).status, 201);
    const quick = JSON.parse(readFileSync(join(root, 'processes', 'orders-no-connector.json'), 'utf8'));
    t.equal((await rt.api('POST', '/api/v1/deployments', ownerToken, quick)).status, 201);
    const sample = readFileSync(join(root, 'processes', 'orders-sample.json'), 'utf8');
    const { page, errors } = await openConsole(t, browser, rt);
    await signIn(page, ownerToken);
    await page.waitForFunction(() => document.body.dataset.events === 'live');
    const events = await openEvents(rt.url, ownerToken);
    t.teardown(() => events.cancel());
    for (let round = 1; round <= 20; round++) {
      if (round % 2 === 0) {
        // ends at once: the page is opened as it starts, the end may come before any read
        const id = (await rt.api('POST', '/api/v1/executions', ownerToken, { process: quick.id, documents: [{ body: sample }] })).body.id as string;
        await page.goto(`${rt.url}/#/executions/${id}`);
        await page.waitForFunction(() => /^complete/.test(document.querySelector('#execution-status')?.textContent ?? ''));
        t.pass(`round ${round}: an execution that ended at once is shown complete`);
        continue;
      }
      // the page's read is answered while it runs and reaches the page after the end event
      const release = join(dir, `release-${round}`);
      const nap = { id: `nap-${round}`, name: 'nap', start: { kind: 'none', next: 'nap' }, steps: [{ id: 'nap', kind: 'operation', connection: 'kit', operation: 'sleep', parameters: { ms: 600_000, release } }] };
      t.equal((await rt.api('POST', '/api/v1/deployments', ownerToken, nap)).status, 201);
      const id = (await rt.api('POST', '/api/v1/executions', ownerToken, { process: nap.id })).body.id as string;
      await events.next((e) => e.id === id && e.status === 'in-process');
      let held = true;
      await page.route(`**/api/v1/executions/${id}`, async (route) => {
        if (!held) return route.continue();
        held = false;
        const stale = await route.fetch();
        const body = await stale.text();
        writeFileSync(release, '');
        await events.next((e) => e.id === id && e.status === 'complete');
        await route.fulfill({ response: stale, body });
      });
      await page.goto(`${rt.url}/#/executions/${id}`);
      await page.waitForFunction(() => /^complete/.test(document.querySelector('#execution-status')?.textContent ?? ''));
      await page.waitForFunction(() => document.querySelector('[data-node="step:nap"]')?.dataset.counts === '1/1/0');
      t.notOk(held, `round ${round}: the stale read was answered after the end, and the page shows complete with the final counts`);
      await page.unroute(`**/api/v1/executions/${id}`);
    }
    t.same(errors, [], 'no script errors');
  });
}

if (browser) {
  t.test('step data: the documents that left each step, JSON pretty-printed, text as text, binary as size and hex, a secret property scrubbed', async (t) => {
    const { home, ownerToken } = await initHome(t, { kind: 'atom' });
    const rt = await startRuntime(t, home);
    const definition = {
      id: 'step-data-view',
      name: 'Step data view',
      start: { kind: 'documents', next: 'tag' },
      steps: [
        { id: 'tag', kind: 'set-properties', document: { 'api.password': 'hunter2-Zq9', 'order.kind': { $expr: '$exists(kind) ? kind : "other"' } }, next: 'check' },
        { id: 'check', kind: 'decision', condition: '$exists(kind)', ifTrue: 'total', ifFalse: 'other' },
        { id: 'total', kind: 'map', expression: '$merge([$, {"total": n * 2}])' },
        { id: 'other', kind: 'notify', message: 'not JSON' },
      ],
    };
    const binary = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 10, 13]);
    const documents = [{ body: JSON.stringify({ kind: 'a', n: 21 }) }, { body: binary.toString('base64'), encoding: 'base64' }, { body: 'plain words' }];
    t.equal((await rt.api('POST', '/api/v1/deployments', ownerToken, definition)).status, 201);
    const run = await rt.api('POST', '/api/v1/executions', ownerToken, { process: definition.id, documents, wait: true, recordStepData: true });
    t.equal(run.body.status, 'complete', JSON.stringify(run.body));
    const { page, errors } = await openConsole(t, browser, rt);
    await signIn(page, ownerToken);
    await page.goto(`${rt.url}/#/executions/${run.body.id}`);
    await page.locator('.diagram[data-ready=true]').waitFor();
    await page.locator('#step-data-steps button').first().waitFor();
    t.same(await page.locator('#step-data-steps button').allInnerTexts(), ['check (3)', 'other (2)', 'tag (3)', 'total (1)'], 'the steps with recorded documents');

    // from the diagram: a node's panel opens its documents
    await page.locator('[data-node="step:tag"]').focus();
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Show its documents' }).click();
    await page.locator('#step-data-documents .step-document').nth(2).waitFor();
    const docs = page.locator('#step-data-documents .step-document');
    t.equal(await docs.count(), 3);
    const first = await docs.nth(0).innerText();
    t.match(first, /api\.password\s+\[redacted\]/, 'the secret property is scrubbed');
    t.match(first, /order\.kind\s+a/);
    t.match(first, /JSON, 19 bytes/);
    t.same(await docs.nth(0).locator('.properties-diff li').allInnerTexts(), ['+ api.password = [redacted]', '+ order.kind = a'], 'the properties the step added, input → output');
    t.equal(await docs.nth(0).locator('.body-json').innerText(), JSON.stringify({ kind: 'a', n: 21 }, null, 2), 'JSON pretty-printed');
    const second = await docs.nth(1).innerText();
    t.match(second, /binary, 8 bytes/, 'a binary body by its size');
    t.equal(await docs.nth(1).locator('.body-hex').innerText(), '00 01 02 ff fe 80 0a 0d', 'and its hex head');
    t.equal(await docs.nth(2).locator('.body-text').innerText(), 'plain words', 'text as text');
    // (the definition in the node's panel holds the literal, as its author wrote it)
    t.notOk((await page.locator('#step-data').innerHTML()).includes('hunter2-Zq9'), 'the secret value is nowhere in the step data');
    await page.locator('#step-data').screenshot({ path: join(consoleArtifacts, 'step-data.png') });
    refreshDocsScreenshot('step-data.png', 'console-step-data.png');

    // the map's output: the changed JSON
    await page.getByRole('button', { name: 'total (1)' }).click();
    await page.locator('#step-data-documents .body-json').waitFor();
    t.same(JSON.parse(await page.locator('#step-data-documents .body-json').innerText()), { kind: 'a', n: 21, total: 42 }, 'the document as it left the map');
    t.same(errors, [], 'no script errors');
  });
}

if (browser) {
  t.test('a test-mode run has its diagram too: the definition it ran, kept with it, with its counts and step data', async (t) => {
    const { home, ownerToken } = await initHome(t, { kind: 'atom' });
    const rt = await startRuntime(t, home);
    const definition = {
      id: 'tried-out',
      name: 'Tried out, never deployed',
      start: { kind: 'documents', next: 'check' },
      steps: [
        { id: 'check', kind: 'decision', condition: 'n > 1', ifTrue: 'big', ifFalse: 'small' },
        { id: 'big', kind: 'notify', message: 'big' },
        { id: 'small', kind: 'notify', message: 'small' },
      ],
    };
    const documents = [{ body: JSON.stringify({ n: 1 }) }, { body: JSON.stringify({ n: 2 }) }, { body: JSON.stringify({ n: 3 }) }];
    const run = await rt.api('POST', '/api/v1/executions', ownerToken, { definition, documents, wait: true });
    t.equal(run.body.status, 'complete', JSON.stringify(run.body));
    t.equal(run.body.version, null, 'a test-mode run');
    t.match((await rt.api('GET', `/api/v1/executions/${run.body.id}`, ownerToken)).body.definition, definition, 'GET of the execution gives the definition it ran');
    const { page, errors } = await openConsole(t, browser, rt);
    await signIn(page, ownerToken);
    await page.goto(`${rt.url}/#/executions/${run.body.id}`);
    await page.locator('.diagram[data-ready=true]').waitFor();
    const counts = (step: string) => page.locator(`[data-node="step:${step}"]`).getAttribute('data-counts');
    t.equal(await counts('check'), '3/3/0');
    t.equal(await counts('big'), '2/2/0', 'two documents went the true way');
    t.equal(await counts('small'), '1/1/0');
    await page.locator('#step-data-steps button').first().waitFor();
    t.same(await page.locator('#step-data-steps button').allInnerTexts(), ['big (2)', 'check (3)', 'small (1)'], 'and its step data, recorded because it is a test-mode run');
    t.same(errors, [], 'no script errors');
  });
}
