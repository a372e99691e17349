/**
 * The process diagram in a real browser: a 20-step process with every edge kind laid out
 * by elkjs (in its worker, under the console's CSP) with no two node boxes overlapping,
 * the nodes reachable with Tab and opened with Enter, the JSON one click away.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixturePlugins, initHome, root, startRuntime } from '../helpers/quark.js';
import { consoleArtifacts, launchBrowser, openConsole, signIn } from '../helpers/browser.js';

declare const document: any;

type Box = { id: string; x: number; y: number; width: number; height: number };

function overlapping(boxes: Box[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i]!;
      const b = boxes[j]!;
      if (a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height) pairs.push([a.id, b.id]);
    }
  }
  return pairs;
}

const browser = await launchBrowser(t, 'the diagram');
if (browser) {
  t.test('a 20-step process with every edge kind: laid out with no overlapping nodes, keyboard-reachable, details and JSON one click away', async (t) => {
    const { home, ownerToken } = await initHome(t, { kind: 'atom', config: { plugins: { paths: [join(fixturePlugins, 'process-kit')] } } });
    const rt = await startRuntime(t, home);
    t.equal((await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'kit', connector: 'process-kit', config: {} })).status, 201);
    const callee = JSON.parse(readFileSync(join(root, 'processes', 'enrich-order.json'), 'utf8'));
    t.equal((await rt.api('POST', '/api/v1/deployments', ownerToken, callee)).status, 201);
    const definition = JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'processes', 'every-edge.json'), 'utf8'));
    t.equal(definition.steps.length, 20, 'the fixture has 20 steps');
    const deployed = await rt.api('POST', '/api/v1/deployments', ownerToken, definition);
    t.equal(deployed.status, 201, JSON.stringify(deployed.body));

    const { page, errors, requests } = await openConsole(t, browser, rt);
    await signIn(page, ownerToken);
    await page.goto(`${rt.url}/#/deployments/every-edge`);
    await page.locator('.diagram[data-ready=true]').waitFor();

    const boxes: Box[] = await page.locator('.node .node-shape').evaluateAll((els) =>
      els.map((el: any) => {
        const r = el.getBoundingClientRect();
        return { id: el.closest('.node').dataset.node, x: r.x, y: r.y, width: r.width, height: r.height };
      }),
    );
    const ids = boxes.map((b) => b.id);
    for (const step of definition.steps) t.ok(ids.includes(`step:${step.id}`), `step ${step.id} is drawn`);
    t.ok(ids.includes('start'), 'the start is drawn');
    t.ok(ids.filter((id) => id.startsWith('end:')).length >= 5, 'the open ends are drawn');
    t.ok(boxes.every((b) => b.width > 0 && b.height > 0), 'every node has a box');
    t.same(overlapping(boxes), [], 'no two node boxes overlap');

    const kinds = await page.locator('.edge').evaluateAll((els) => els.map((el: any) => el.dataset.kind));
    for (const kind of ['next', 'decision', 'route', 'branch', 'try', 'catch']) t.ok(kinds.includes(kind), `an edge of kind ${kind}`);
    const labels = await page.locator('.edge-label').allTextContents();
    for (const label of ['true', 'false', '= "a"', '= "b"', 'default', 'path 1', 'path 2', 'try', 'catch']) t.ok(labels.includes(label), `the edge label ${label}`);
    t.equal(await page.locator('.edge path').evaluateAll((els) => els.filter((el: any) => !/^M[\d.-]+,[\d.-]+( L[\d.-]+,[\d.-]+)+$/.test(el.getAttribute('d'))).length), 0, 'every edge is routed');
    t.equal(await page.locator('[data-node="step:echo-big"] .node-icon').textContent(), 'OP', 'kind icons');
    t.equal(await page.locator('[data-node="step:enrich-call"] a').getAttribute('href'), '#/deployments/enrich-order', 'the process call links to the called process');

    // keyboard: Tab reaches the nodes, Enter opens the details
    await page.locator('#diagram-svg').focus();
    const reached: string[] = [];
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press('Tab');
      reached.push(await page.evaluate(() => document.activeElement?.closest('.node')?.dataset.node ?? document.activeElement?.tagName));
    }
    t.ok(reached.includes('start') && reached.some((id) => id.startsWith('step:')), `Tab moves through the nodes: ${reached.join(', ')}`);
    await page.locator('[data-node="step:echo-big"]').focus();
    await page.keyboard.press('Enter');
    const panel = await page.locator('#diagram-panel').innerText();
    t.match(panel, /Connection\s+kit/, 'the panel shows the connection');
    t.match(panel, /Operation\s+echo/);
    t.match(panel, /"tag": "big"/, 'and the parameters');
    await page.locator('[data-node="step:check-a"]').click();
    t.match(await page.locator('#diagram-panel').innerText(), /Condition\s+amount > 10/, 'a click shows a decision\'s expression');

    // zoom changes the scale; Fit brings it back
    const scale = () => page.locator('.viewport').getAttribute('transform');
    await page.getByRole('button', { name: 'Fit the diagram' }).click();
    const fitted = await scale();
    await page.getByRole('button', { name: 'Zoom in' }).click();
    t.not(await scale(), fitted, 'zoom in changes the view');
    await page.getByRole('button', { name: 'Fit the diagram' }).click();
    t.equal(await scale(), fitted, 'Fit restores it');

    // the JSON, one click away
    t.ok(await page.locator('#diagram-json').isHidden());
    await page.getByRole('button', { name: 'Show JSON' }).click();
    t.has(JSON.parse(await page.locator('#diagram-json').innerText()), definition, 'the definition as JSON (with the defaults the runtime filled in)');
    await page.getByRole('button', { name: 'Hide JSON' }).click();
    await page.locator('#diagram-svg').screenshot({ path: join(consoleArtifacts, 'diagram.png') });

    // the called process, from its link
    await page.locator('[data-node="step:enrich-call"] a').click();
    await page.getByRole('heading', { name: 'Process enrich-order' }).waitFor();
    await page.locator('.diagram[data-ready=true]').waitFor();
    t.same(requests.filter((u) => !u.startsWith(rt.url + '/')), [], 'no request leaves the runtime');
    t.same(errors, [], 'no script errors (none from the CSP either)');
  });
}
