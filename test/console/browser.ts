/**
 * The console's browser tests share this: Debian's chromium through playwright-core (or a
 * skip that says so), a page that records script errors and the requests it made, and a
 * keyboard-only sign-in.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { root, type Running } from '../helpers/quark.js';

export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const artifacts = join(root, 'test-artifacts', 'console');

type Browser = import('playwright-core').Browser;
export type Page = import('playwright-core').Page;

/** Launches chromium, or returns undefined (having said why) when there is none. */
export async function launch(t: Test): Promise<Browser | undefined> {
  if (!existsSync(chromiumPath)) {
    console.log(`# No Chromium at ${chromiumPath} (set CHROMIUM_PATH, or apt-get install -y chromium): the console's browser tests are SKIPPED.`);
    t.skip(`browser tests of the console: no Chromium at ${chromiumPath}`, () => {});
    return undefined;
  }
  const { chromium } = await import('playwright-core');
  mkdirSync(artifacts, { recursive: true });
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
  });
  t.teardown(() => browser.close());
  return browser;
}

export interface Opened {
  page: Page;
  requests: string[];
  errors: string[];
  /** The dialogs the page opened (confirm, beforeunload), by message; `answer` decides them. */
  dialogs: string[];
  answer: { accept: boolean };
}

/** A page on the runtime's console that records script errors, requests and dialogs. */
export async function open(t: Test, browser: Browser, rt: Running, viewport = { width: 1200, height: 900 }): Promise<Opened> {
  const context = await browser.newContext({ viewport });
  t.teardown(() => context.close());
  const page = await context.newPage();
  const requests: string[] = [];
  const errors: string[] = [];
  const dialogs: string[] = [];
  const answer = { accept: true };
  page.on('request', (r) => requests.push(r.url()));
  page.on('dialog', (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    void (answer.accept ? d.accept() : d.dismiss());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    // failed API calls the page expects (400, 403, 409) are logged by the browser itself
    if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) errors.push(m.text());
  });
  await page.goto(rt.url + '/');
  return { page, requests, errors, dialogs, answer };
}

/** Keyboard only: the token field has the focus, Enter submits. */
export async function signIn(page: Page, token: string): Promise<void> {
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.keyboard.type(token);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: /^Runtime / }).waitFor();
}

/** Whether the page scrolls sideways (its content is wider than the window). */
export async function scrollsSideways(page: Page): Promise<boolean> {
  return page.evaluate(() => {
    const d = (globalThis as any).document;
    return d.scrollingElement.scrollWidth > (globalThis as any).innerWidth;
  });
}
