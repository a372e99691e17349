/**
 * Debian's chromium driven by playwright-core, for the console's browser tests: launch
 * (or skip, saying so, when no Chromium is installed), open a page that records script
 * errors and requests, sign in with the keyboard.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { root, type Running } from './quark.js';

export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const consoleArtifacts = join(root, 'test-artifacts', 'console');

/**
 * Keeps a screenshot the README shows: copies test-artifacts/console/<name> to
 * docs/<docsName>, so each run of the browser tests refreshes it.
 */
export function refreshDocsScreenshot(name: string, docsName: string): void {
  copyFileSync(join(consoleArtifacts, name), join(root, 'docs', docsName));
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** The browser, or undefined (and a line saying the tests are skipped) without Chromium. */
export async function launchBrowser(t: Teardown): Promise<Browser | undefined> {
  if (!existsSync(chromiumPath)) {
    console.log(`# No Chromium at ${chromiumPath} (set CHROMIUM_PATH, or apt-get install -y chromium): these browser tests are SKIPPED.`);
    return undefined;
  }
  const { chromium } = await import('playwright-core');
  mkdirSync(consoleArtifacts, { recursive: true });
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
  });
  t.teardown(() => browser.close());
  return browser;
}

export interface OpenPage {
  page: Page;
  requests: string[];
  errors: string[];
}

/** A fresh context and page on the runtime's console, recording requests and script errors. */
export async function openConsole(t: Teardown, browser: Browser, rt: Running, viewport = { width: 1280, height: 900 }): Promise<OpenPage> {
  const context = await browser.newContext({ viewport });
  t.teardown(() => context.close());
  const page = await context.newPage();
  const requests: string[] = [];
  const errors: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) errors.push(m.text());
  });
  page.on('dialog', (d) => void d.accept());
  await page.goto(rt.url + '/');
  return { page, requests, errors };
}

/** Signs in with the keyboard only: the token field has the focus, Enter submits. */
export async function signIn(page: Page, token: string): Promise<void> {
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.keyboard.type(token);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: /^Runtime / }).waitFor();
}
