// What the molecule benches share: the test helpers (built, in dist/test/helpers), a
// teardown scope per trial, the load average and a median. A molecule is set up with
// startMolecule (test/helpers/molecule.ts): homes made with the real CLI, a counter
// server, `quark start` nodes as child processes, the "counter" connection.
import { join } from 'node:path';
import { execSync } from 'node:child_process';

const dist = join(import.meta.dirname, '..', 'dist', 'test', 'helpers');
export const molecule = await import(join(dist, 'molecule.js'));
export const quark = await import(join(dist, 'quark.js'));

/** The test helpers' teardown, run (last first) when a trial ends. */
export function scope() {
  const fns = [];
  return {
    teardown: (fn) => fns.push(fn),
    async end() {
      for (const fn of fns.reverse()) await fn();
    },
  };
}

/** The 1, 5 and 15 minute load averages, as uptime prints them. */
export const load = () => execSync('uptime').toString().trim().replace(/.*load average: /, '');

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
}

/** `--name value` of the command line, or the fallback. */
export function option(name, fallback) {
  const args = process.argv.slice(2);
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : fallback;
}
