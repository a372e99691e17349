/**
 * The process editor in a real browser: CodeMirror under the console's CSP (no
 * violation, its styles applied), a schema problem marked at its line as you type, the
 * diagram redrawn as you type, the runtime's refusal of a Test run shown at the line of
 * the field it names, then a Test run with a pasted and an uploaded document drawn with
 * its counts and step data, and Deploy; and the same path with the keyboard alone:
 * completion in the editor, Tab to the diagram, a node's "Show in the editor" back to its
 * line, and a Test run.
 */
import t from 'tap';
import { join } from 'node:path';
import { fixturePlugins, initHome, startRuntime } from '../helpers/quark.js';
import { consoleArtifacts, launchBrowser, openConsole, refreshDocsScreenshot, signIn, type OpenPage } from '../helpers/browser.js';

declare const document: any;
declare const window: any;
declare const getComputedStyle: any;
declare const location: any;

type Page = OpenPage['page'];

/** The editor's content element (inside the editor's shadow root: locators pierce it). */
const content = (page: Page) => page.locator('#definition-editor .cm-content');

/** Replaces the editor's text as a paste would. */
async function replaceText(page: Page, text: string): Promise<void> {
  await content(page).focus();
  await page.keyboard.press('Control+A');
  await page.keyboard.insertText(text);
}

/** The 1-based line of the first line holding `needle`. */
const lineOf = (text: string, needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

/** Records the page's CSP violations from now on. */
async function watchCsp(page: Page): Promise<void> {
  await page.evaluate(() => {
    window.cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e: any) => window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
  });
}

/** The element that has the focus, through the editor's shadow root: its id, or the editor's content, or a diagram node. */
const focused = (page: Page) =>
  page.evaluate(() => {
    let el = document.activeElement;
    while (el?.shadowRoot?.activeElement) el = el.shadowRoot.activeElement;
    if (el?.classList?.contains('cm-content')) return 'editor';
    const node = el?.closest?.('.node');
    if (node) return `node:${node.dataset.node}`;
    return el?.id || el?.tagName;
  });

async function tabTo(page: Page, target: string, max = 40): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const at = await focused(page);
    seen.push(at);
    if (at === target) return seen;
  }
  throw new Error(`Tab did not reach ${target}: ${seen.join(', ')}`);
}

const kit = { plugins: { paths: [join(fixturePlugins, 'process-kit')] } };

const definition = (connection: string, extra = '') => `{
  "id": "greet",
  "name": "Greet",
  "start": { "kind": "documents", "next": "tag" },
  "steps": [
    { "id": "tag", "kind": "set-properties", "document": { "greeting": "hello" }, "next": "call"${extra} },
    {
      "id": "call",
      "kind": "operation",
      "connection": "${connection}",
      "operation": "echo",
      "parameters": { "tag": "t1" },
      "next": "shape"
    },
    { "id": "shape", "kind": "map", "expression": "$" }
  ]
}
`;

const browser = await launchBrowser(t, 'the editor');
if (browser) {
  t.test('edit → test run → deploy: a problem at its line first, the diagram as you type, counts and step data, no CSP violation', async (t) => {
    const { home, ownerToken } = await initHome(t, { kind: 'atom', config: kit });
    const rt = await startRuntime(t, home);
    t.equal((await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'kit', connector: 'process-kit', config: {} })).status, 201);
    const { page, errors, requests } = await openConsole(t, browser, rt);
    await watchCsp(page);
    await signIn(page, ownerToken);
    const firstLoad = requests.filter((u) => u.endsWith('.js')).map((u) => new URL(u).pathname);
    t.notOk(firstLoad.some((p) => /codemirror|process-schema|editor/.test(p)), `the first load fetches no editor code (${firstLoad.join(', ')})`);

    await page.getByRole('link', { name: 'Deployments' }).click();
    await page.getByRole('link', { name: 'Write one in the editor' }).click();
    await page.getByRole('heading', { name: 'New process', level: 1 }).waitFor();
    await page.locator('#definition-editor[data-ready=true]').waitFor();
    await page.locator('#editor-diagram .diagram[data-ready=true] [data-node="step:shape"]').waitFor();
    t.ok(requests.some((u) => u.endsWith('/vendor-codemirror.js')), 'the editor page loads CodeMirror');
    t.equal(await page.locator('#definition-editor .cm-editor').evaluate((el: any) => getComputedStyle(el).display), 'flex', "CodeMirror's own styles apply (an adopted stylesheet)");
    t.equal(await page.locator('#definition-editor .cm-editor').evaluate((el: any) => el.getRootNode().adoptedStyleSheets.length > 0), true);
    await page.locator('#editor-problems-summary', { hasText: 'No problems' }).waitFor();

    // a schema problem, marked as you type at its line
    const withColour = definition('nope', ', "colour": 1');
    await replaceText(page, withColour);
    const colour = page.locator('#editor-problems li[data-source=schema]');
    await colour.first().waitFor();
    t.equal(await colour.count(), 1, 'one schema problem');
    t.equal(await colour.getAttribute('data-line'), String(lineOf(withColour, '"colour"')), 'at the line of the unknown field');
    t.match(await colour.innerText(), /"colour" is not a known field/, "in the runtime's words");
    t.match(await page.locator('#definition-editor .cm-lintRange-error').first().innerText(), /"colour": 1/, 'the field is underlined in the editor');
    await page.locator('#editor-diagram [data-node="step:call"]').waitFor();
    t.pass('the diagram was redrawn as the text changed (the new steps are drawn)');

    // the schema is satisfied; the runtime refuses the unknown connection, at its line
    const text = definition('nope');
    await replaceText(page, text);
    await page.locator('#editor-problems-summary', { hasText: 'No problems' }).waitFor();
    await page.getByRole('button', { name: 'Test run' }).click();
    const refused = page.locator('#editor-problems li[data-source=runtime]');
    await refused.first().waitFor();
    t.equal(await refused.first().getAttribute('data-path'), '/steps/1/connection');
    t.equal(await refused.first().getAttribute('data-line'), String(lineOf(text, '"connection": "nope"')), 'the runtime problem is shown at the line of the connection');
    t.match(await page.locator('#definition-editor .cm-lintRange-error').first().innerText(), /"connection": "nope"/, 'and underlined there');
    t.match(await page.locator('#definition-editor .cm-activeLine').innerText(), /"connection": "nope"/, 'the cursor is on that line');
    t.equal(await focused(page), 'editor', 'in the focused editor');
    t.match(await page.locator('#status').innerText(), /QUARK_ERR_PROCESS_INVALID/);
    await page.screenshot({ path: join(consoleArtifacts, 'editor-problem.png') });
    refreshDocsScreenshot('editor-problem.png', 'console-editor.png');

    // fixed: the problem goes with the text it named
    await replaceText(page, definition('kit'));
    await page.locator('#editor-problems-summary', { hasText: 'No problems' }).waitFor();
    t.equal(await refused.count(), 0, 'the runtime problem is gone once its field changed');

    // a test run with a pasted and an uploaded (binary) document
    await page.locator('#test-document').fill('{"name": "Ada"}');
    await page.locator('#test-files').setInputFiles({ name: 'blob.bin', mimeType: 'application/octet-stream', buffer: Buffer.from([0, 1, 2, 255, 254]) });
    await page.getByRole('button', { name: 'Test run' }).click();
    await page.locator('#test-run-result .test-run[data-status=complete]').waitFor();
    t.equal(await page.locator('#test-run-documents').innerText(), '2 in, 2 out, 0 failed');
    const counts = (step: string) => page.locator(`#test-run-result [data-node="step:${step}"]`).getAttribute('data-counts');
    await page.waitForFunction(() => document.querySelector('#test-run-result [data-node="step:shape"]')?.dataset.counts === '2/2/0');
    t.equal(await counts('call'), '2/2/0', 'counts on the test run diagram');
    t.equal(await counts('tag'), '2/2/0');
    await page.locator('#step-data-steps button[data-step=call]').click();
    await page.locator('#step-data-documents .step-document').nth(1).waitFor();
    const data = await page.locator('#step-data-documents').innerText();
    t.match(data, /greeting\s+hello/, 'the step data shows the properties');
    t.match(data, /echo\.tag\s+t1/);
    t.match(data, /"name": "Ada"/, 'the pasted JSON body, pretty-printed');
    t.match(data, /binary, 5 bytes/, 'the uploaded file, as binary');
    t.match(data, /00 01 02 ff fe/);
    t.equal(await page.locator('#test-run-link').getAttribute('href'), `#/executions/${await page.locator('#test-run-link').innerText()}`, 'the run links to its execution page');
    await page.screenshot({ path: join(consoleArtifacts, 'editor-test-run.png'), fullPage: true });

    // deploy
    await page.getByRole('button', { name: 'Deploy' }).click();
    await page.locator('#deployed').waitFor();
    t.match(await page.locator('#deployed').innerText(), /Deployed greet version 1/);
    const deployed = await rt.api('GET', '/api/v1/deployments/greet', ownerToken);
    t.equal(deployed.body.activeVersion, 1, 'the process is deployed');
    t.equal(deployed.body.definition.steps[1].connection, 'kit', 'with the edited definition');
    t.equal(await page.evaluate(() => location.hash), '#/editor/greet', 'the address now edits the deployed process');
    await page.getByRole('link', { name: 'Open process greet' }).click();
    await page.getByRole('heading', { name: 'Process greet' }).waitFor();
    t.same(errors.filter((e) => !/QUARK_ERR_PROCESS_INVALID|status of 400/.test(e)), [], 'no script errors');
    t.same(await page.evaluate(() => window.cspViolations), [], 'no CSP violation');
    t.same(requests.filter((u) => !u.startsWith(rt.url + '/')), [], 'no request leaves the runtime');
  });

  t.test('keyboard only: the editor with completion, Tab to the diagram, a node back to its line, a test run', async (t) => {
    const { home, ownerToken } = await initHome(t, { kind: 'atom', config: kit });
    const rt = await startRuntime(t, home);
    const { page, errors } = await openConsole(t, browser, rt);
    await watchCsp(page);
    await signIn(page, ownerToken);
    // to the deployments page and the editor with Tab and Enter
    await tabTo(page, 'A'); // the skip link first; the nav links follow
    let hops = 0;
    while ((await page.evaluate(() => document.activeElement?.textContent)) !== 'Deployments' && hops++ < 12) await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Deployments', level: 1 }).waitFor();
    await tabTo(page, 'open-editor');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'New process', level: 1 }).waitFor();
    await page.locator('#editor-diagram .diagram[data-ready=true]').waitFor();

    // into the editor; a field added with completion
    await tabTo(page, 'editor');
    await page.keyboard.press('Control+End');
    for (let i = 0; i < 4; i++) await page.keyboard.press('ArrowUp');
    await page.keyboard.press('End');
    t.match(await page.locator('#definition-editor .cm-activeLine').innerText(), /"expression": "\$"/, 'on the step\'s last field');
    await page.keyboard.type(',');
    await page.keyboard.press('Enter');
    await page.keyboard.type('"n');
    const options = page.locator('#definition-editor .cm-tooltip-autocomplete li');
    await options.first().waitFor();
    const offered = await options.allInnerTexts();
    t.ok(offered.some((o) => o.startsWith('"name"')) && offered.some((o) => o.startsWith('"next"')), `completion offers a map step's fields: ${offered.join(' | ')}`);
    t.notOk(offered.some((o) => o.includes('"connection"') || o.includes('"id"')), 'not the fields of another kind, nor one the step has');
    await page.keyboard.type('am');
    await page.waitForFunction(() => document.querySelector('#definition-editor').shadowRoot.querySelectorAll('.cm-tooltip-autocomplete li').length === 1);
    t.same(await options.allInnerTexts(), ['"name"'], 'typing narrows the list');
    await page.keyboard.press('Enter');
    await page.keyboard.type('"Shape it"');
    t.match(await page.locator('#definition-editor .cm-activeLine').innerText(), /^\s*"name": "Shape it"\s*$/, 'the completed field');
    await page.waitForFunction(() => document.querySelector('#editor-diagram [data-node="step:shape"] .node-label')?.textContent === 'Shape it');
    t.pass('the diagram follows the edit');

    // out of the editor with Tab, through the diagram's nodes, Enter opens one
    const path = await tabTo(page, 'node:step:shape');
    t.ok(path.includes('node:start'), `Tab left the editor and reached the nodes: ${path.join(', ')}`);
    await page.keyboard.press('Enter');
    t.match(await page.locator('#editor-diagram-panel').innerText(), /Shape it[\s\S]*Kind\s+map/, 'the panel shows the step');
    await tabTo(page, 'panel-go-to');
    await page.keyboard.press('Enter');
    t.equal(await focused(page), 'editor', '"Show in the editor" focuses the editor');
    t.equal(await page.locator('#definition-editor .cm-activeLineGutter').first().innerText(), '9', "on the step's line");

    // a test run from the keyboard, with a pasted document
    await tabTo(page, 'test-document');
    await page.keyboard.type('{"a": 1}');
    await tabTo(page, 'test-run');
    await page.keyboard.press('Enter');
    await page.locator('#test-run-result .test-run[data-status=complete]').waitFor();
    await page.waitForFunction(() => document.querySelector('#test-run-result [data-node="step:shape"]')?.dataset.counts === '1/1/0');
    t.pass('the test run completed with the counts on its diagram');
    await page.screenshot({ path: join(consoleArtifacts, 'editor-keyboard.png'), fullPage: true });
    // the edits were not deployed: leaving the page asks first
    const leaving = page.waitForEvent('dialog');
    await page.getByRole('link', { name: 'Runtime' }).click();
    t.match((await leaving).message(), /unsaved changes/, 'the unsaved-changes guard holds the edited definition');
    t.same(errors, [], 'no script errors');
    t.same(await page.evaluate(() => window.cspViolations), [], 'no CSP violation');
  });
}
