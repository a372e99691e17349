/**
 * The process-level handlers of `quark start` (runtime/cli/main.ts): what escapes every
 * owner in the runtime is said on standard error and the process exits 1 — it neither
 * hangs nor dies silently — and the home's lock goes with the process.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cli, initHome, startRuntime, tempDir } from '../helpers/quark.js';

/**
 * A preload that, once the runtime says it is listening, throws from a callback or leaves
 * a promise rejected with no handler: faults no code of the runtime owns.
 */
const preload = `
const fault = process.env.QUARK_TEST_FAULT;
let fired = false;
for (const stream of [process.stdout, process.stderr]) {
  const write = stream.write.bind(stream);
  stream.write = (chunk, ...rest) => {
    const written = write(chunk, ...rest);
    if (!fired && /listening on/.test(String(chunk))) {
      fired = true;
      setImmediate(() => {
        if (fault === 'throw') throw new Error('thrown on purpose');
        void Promise.reject(new Error('rejected on purpose'));
      });
    }
    return written;
  };
}
`;

const cases = [
  { fault: 'throw', said: /quark: uncaught exception, exiting: Error: thrown on purpose/ },
  { fault: 'reject', said: /quark: unhandled promise rejection, exiting: Error: rejected on purpose/ },
];

for (const { fault, said } of cases) {
  t.test(`an escaped ${fault === 'throw' ? 'exception' : 'rejection'} is said on standard error and quark start exits 1`, async (t) => {
    const { home } = await initHome(t);
    const file = join(tempDir(t), 'fault.mjs');
    writeFileSync(file, preload);
    const run = await cli(['start', '--home', home, '--port', '0'], { NODE_OPTIONS: `--import=${pathToFileURL(file).href}`, QUARK_TEST_FAULT: fault });
    t.equal(run.code, 1, 'exit code 1');
    t.match(run.stderr, said, 'what escaped, on standard error');
    t.match(run.stdout + run.stderr, /listening on/, 'it had started');
    const again = await startRuntime(t, home);
    t.equal((await again.api('GET', '/readyz')).status, 200, 'the home is not left locked: it starts again');
  });
}
