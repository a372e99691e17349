import { openSqliteStore } from '../dist/runtime/store/sqlite-store.js';
import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
const log = JSON.stringify({ level: 30, time: Date.now(), pid: 1, hostname: 'x', execution: 'exe_xxxxxxxxxxxxxxxx', process: 'bench-latency', version: 1, trigger: 'api', passedIn: 0, msg: 'execution started' }).repeat(2) + '\n';
for (const [batch, ckpt] of [[1, 1000], [10, 1000], [10, 10000], [10, 0], [1, 0]]) {
  const dir = mkdtempSync('/tmp/pe-micro-');
  const store = openSqliteStore(dir + '/s.db');
  await store.close();
  const db = new Database(dir + '/s.db');
  db.pragma('journal_mode = WAL'); db.pragma('synchronous = NORMAL'); db.pragma(`wal_autocheckpoint = ${ckpt}`);
  db.exec("INSERT INTO accounts (id,name,relation,created_at) VALUES ('a','a','owner','x')");
  const ins = db.prepare("INSERT INTO executions (id, account_id, process_id, version, trigger, status, queued_at, steps, documents_in, documents_out, documents_failed, warnings, attempt, lease_epoch) VALUES (?, 'a', 'p', 1, 'api', 'queued', ?, '{}', 0,0,0,0,1,0)");
  const upd = db.prepare("UPDATE executions SET status = ?, started_at = ?, steps = ? WHERE id = ? AND lease_epoch = 0");
  const lg = db.prepare('INSERT INTO execution_logs (execution_id, lines) VALUES (?, ?)');
  const N = 10000;
  const ops = [];
  for (let i = 0; i < N; i++) { const id = `exe_${i}_${Math.random()}`; ops.push(() => ins.run(id, new Date().toISOString()), () => upd.run('in-process', 'x', '{}', id), () => upd.run('complete', 'x', '{"map":{"in":1,"out":1}}', id), () => lg.run(id, log)); }
  // interleave like concurrent executions: shuffle in windows of 200
  const t = performance.now();
  for (let i = 0; i < ops.length; i += batch) {
    if (batch > 1) db.exec('BEGIN IMMEDIATE');
    for (let j = i; j < Math.min(ops.length, i + batch); j++) ops[j]();
    if (batch > 1) db.exec('COMMIT');
  }
  const us = (performance.now() - t) / N * 1000;
  const cpu = process.cpuUsage();
  console.log(`batch ${batch} autocheckpoint ${ckpt}: ${us.toFixed(1)} µs per execution (4 writes)`);
  db.close();
}
