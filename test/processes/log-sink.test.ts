/**
 * Execution logs go to the store through one bounded write queue: in order per execution, drained on
 * close, and when the store falls behind, lines are dropped and counted instead of
 * piling up in memory.
 */
import t from 'tap';
import { createExecutionLogs } from '../../runtime/processes/log-sink.js';

/** A store append that holds every write until `open()`; what it was given, in order. */
function heldStore() {
  const written: { id: string; lines: string }[] = [];
  let opened = false;
  const waiting: (() => void)[] = [];
  return {
    written,
    append: async (id: string, lines: string) => {
      if (!opened) await new Promise<void>((resolve) => waiting.push(resolve));
      written.push({ id, lines });
    },
    open() {
      opened = true;
      for (const resolve of waiting.splice(0)) resolve();
    },
  };
}

const messages = (text: string) => text.split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { msg: string }).msg);

t.test('chunks of one execution reach the store in order, and end() resolves once they are written', async (t) => {
  const store = heldStore();
  const errors: unknown[] = [];
  const logs = createExecutionLogs({ level: 'info', redact: [], append: store.append, onError: (_id, e) => errors.push(e), maxBytes: 200 });
  const { log, end } = logs.open('exe_1', {});
  for (let i = 0; i < 20; i++) log.info(`line ${i}`);
  const ended = end();
  store.open();
  await ended;
  t.same(messages(store.written.map((w) => w.lines).join('')), Array.from({ length: 20 }, (_, i) => `line ${i}`), 'every line, in order');
  t.ok(store.written.length > 1, 'in several chunks');
  t.same(errors, []);
});

t.test("an execution's end waits for its own log lines only, not for another execution's that the store holds", async (t) => {
  const held = heldStore();
  const written: string[] = [];
  const logs = createExecutionLogs({
    level: 'info',
    redact: [],
    append: (id, lines) => (id === 'exe_slow' ? held.append(id, lines) : Promise.resolve(void written.push(lines))),
    onError: () => undefined,
  });
  const slow = logs.open('exe_slow', {});
  slow.log.info('slow line');
  const slowEnded = slow.end();
  const quick = logs.open('exe_quick', {});
  quick.log.info('quick line');
  await quick.end();
  t.same(messages(written.join('')), ['quick line'], "the quick one's end resolved with its line written, the slow one's still held");
  let drained = false;
  const drain = logs.drain().then(() => (drained = true));
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(drained, false, 'drain() waits for the held one');
  held.open();
  await Promise.all([slowEnded, drain]);
  t.same(messages(held.written.map((w) => w.lines).join('')), ['slow line']);
});

t.test('a store that falls behind: memory stays bounded, lines beyond the bound are dropped and the log says how many', async (t) => {
  const store = heldStore();
  const logs = createExecutionLogs({ level: 'info', redact: [], append: store.append, onError: () => undefined, maxBytes: 100, maxQueuedBytes: 1000 });
  const { log, end } = logs.open('exe_1', {});
  let peak = 0;
  for (let i = 0; i < 500; i++) {
    log.info(`line ${i} ${'x'.repeat(40)}`);
    peak = Math.max(peak, logs.queuedBytes());
  }
  t.ok(peak <= 1000 + 200, `the queue never held much more than its bound (peak ${peak} bytes)`);
  const ended = end();
  store.open();
  await ended;
  const seen = messages(store.written.map((w) => w.lines).join(''));
  const dropped = seen.find((m) => /log line\(s\) were dropped/.test(m));
  t.ok(dropped, 'the log says lines were dropped');
  const count = Number(/^(\d+) log line/.exec(dropped!)![1]);
  t.equal(seen.filter((m) => m.startsWith('line ')).length + count, 500, 'kept plus dropped is every line');
  t.equal(logs.queuedBytes(), 0, 'drained');
});

t.test('a failed append is reported and the lines after it still go', async (t) => {
  const failures: string[] = [];
  const written: string[] = [];
  let calls = 0;
  const logs = createExecutionLogs({
    level: 'info',
    redact: [],
    append: async (_id, lines) => {
      calls += 1;
      if (calls === 1) throw new Error('disk full');
      written.push(lines);
    },
    onError: (id, error) => failures.push(`${id}: ${(error as Error).message}`),
    maxBytes: 1,
  });
  const { log, end } = logs.open('exe_1', {});
  log.info('first');
  log.info('second');
  await end();
  await logs.drain();
  t.same(failures, ['exe_1: disk full']);
  t.same(messages(written.join('')), ['second']);
});
