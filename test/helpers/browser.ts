/**
 * Debian's chromium driven by playwright-core, for the console's browser tests: launch
 * (or skip, saying so, when no Chromium is installed), open a page that records script
 * errors, requests and dialogs, sign in with the keyboard.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { root, type Running } from './quark.js';

export type { Page };
export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const consoleArtifacts = join(root, 'test-artifacts', 'console');

/** The flags every browser test launches Debian's chromium with. */
const chromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'];

/**
 * Keeps a screenshot the README shows: copies test-artifacts/console/<name> to
 * docs/<docsName>, so each run of the browser tests refreshes it.
 */
export function refreshDocsScreenshot(name: string, docsName: string): void {
  copyFileSync(join(consoleArtifacts, name), join(root, 'docs', docsName));
}

interface Suite {
  teardown(fn: () => unknown): void;
  skip(name: string, fn: () => void): unknown;
}

/**
 * The browser, closed when `t` ends; or undefined without Chromium, having said so and
 * recorded a skipped test named after `what` (so the run counts it as SKIPPED, never passed).
 */
export async function launchBrowser(t: Suite, what: string): Promise<Browser | undefined> {
  if (!existsSync(chromiumPath)) {
    console.log(`# No Chromium at ${chromiumPath} (set CHROMIUM_PATH, or apt-get install -y chromium): the browser tests of ${what} are SKIPPED.`);
    t.skip(`browser tests of ${what}: no Chromium at ${chromiumPath}`, () => {});
    return undefined;
  }
  const { chromium } = await import('playwright-core');
  mkdirSync(consoleArtifacts, { recursive: true });
  const browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
  t.teardown(() => browser.close());
  return browser;
}

export interface OpenPage {
  page: Page;
  requests: string[];
  errors: string[];
  /** The dialogs the page opened (confirm, beforeunload), by type and message; `answer` decides them. */
  dialogs: string[];
  answer: { accept: boolean };
}

/** A fresh context and page on the runtime's console, recording requests, script errors and dialogs. */
export async function openConsole(t: Suite, browser: Browser, rt: Running, viewport = { width: 1280, height: 900 }): Promise<OpenPage> {
  const context = await browser.newContext({ viewport });
  t.teardown(() => context.close());
  const page = await context.newPage();
  const requests: string[] = [];
  const errors: string[] = [];
  const dialogs: string[] = [];
  const answer = { accept: true };
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    // failed API calls the page expects (400, 403, 409) are logged by the browser itself
    if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) errors.push(m.text());
  });
  page.on('dialog', (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    void (answer.accept ? d.accept() : d.dismiss());
  });
  await page.goto(rt.url + '/');
  return { page, requests, errors, dialogs, answer };
}

/** Signs in with the keyboard only: the token field has the focus, Enter submits. */
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
