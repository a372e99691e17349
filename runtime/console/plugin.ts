/**
 * The runtime console: static files (HTML, browser JS modules, CSS) read once at start
 * from runtime/console/static in the package folder and served at `/` without auth. The
 * page itself talks to /api/v1 with the signed-in account's bearer token.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { packageRoot } from '../core/paths.js';

export const consoleDir = join(packageRoot, 'runtime', 'console', 'static');

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** No inline script or style, nothing from another origin, no framing. */
export const consoleHeaders = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

interface StaticFile {
  body: Buffer;
  type: string;
}

/** The console's file names relative to `dir` (with `/`), subfolders such as `pages/` included. */
export function consoleFileNames(dir = consoleDir): string[] {
  const entries = readdirSync(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)).split(sep).join('/'));
}

/** Reads the console's files once; the plugin serves them from memory. */
export function loadConsoleFiles(dir = consoleDir): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  for (const name of consoleFileNames(dir)) {
    const type = types[extname(name)];
    if (type) files.set(name, { body: readFileSync(join(dir, name)), type });
  }
  if (!files.has('index.html')) throw new Error(`the console's index.html is missing from ${dir}`);
  return files;
}

export function consolePlugin(files = loadConsoleFiles()): FastifyPluginAsync {
  return async (app) => {
    for (const [name, file] of files) {
      const paths = name === 'index.html' ? ['/', '/index.html'] : [`/${name}`];
      for (const path of paths) {
        app.get(path, async (_request, reply) => reply.headers(consoleHeaders).type(file.type).send(file.body));
      }
    }
  };
}
