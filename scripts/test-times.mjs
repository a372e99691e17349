#!/usr/bin/env node
// Per-file test cost: runs each built test file on its own and prints a table sorted by CPU,
// so a slow suite shows which files compute and which wait.
//
//   node scripts/test-times.mjs [--jobs N] [--tap] [--json OUT] [--top N] [FILE|FOLDER ...]
//
// FILES default to every *.test.js under dist/test (build first: `npm run build`); a FOLDER
// stands for every *.test.js under it. Each file runs as
// `node FILE` (or `npx tap --disable-coverage FILE` with --tap) under /usr/bin/time, whose CPU
// (user + system) counts the file's process and every child it waited for (workers are
// threads, so they count too; plugin hosts and CLI processes are children). wall − CPU is the
// time the file waited (timers, polls, backoffs, child start-up, or a busy machine). --jobs N
// runs N files at once (default 1: alone, the only way wall means something); the machine's
// load average is printed before and after, since other work on the box inflates wall, not CPU.
// --json OUT writes the rows for a before/after comparison.
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync, readdirSync, statSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir, loadavg, availableParallelism } from 'node:os'
import { join } from 'node:path'

/** @returns {{jobs: number, tap: boolean, json: string | undefined, top: number, patterns: string[]}} */
function parseArgs(argv) {
  const options = { jobs: 1, tap: false, json: undefined, top: 0, patterns: [] }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--jobs') options.jobs = Number(argv[++i])
    else if (arg === '--tap') options.tap = true
    else if (arg === '--json') options.json = argv[++i]
    else if (arg === '--top') options.top = Number(argv[++i])
    else options.patterns.push(arg)
  }
  if (!Number.isInteger(options.jobs) || options.jobs < 1) throw new Error('--jobs takes a positive integer')
  if (options.patterns.length === 0) options.patterns.push('dist/test')
  return options
}

/** Files as given, and every *.test.js under each folder given. */
function testFiles(patterns) {
  const files = new Set()
  for (const pattern of patterns) {
    if (!statSync(pattern).isDirectory()) files.add(pattern)
    else for (const file of readdirSync(pattern, { recursive: true })) if (String(file).endsWith('.test.js')) files.add(join(pattern, String(file)))
  }
  return [...files].sort()
}

/** tap's per-file time limit from package.json ("tap": {"timeout"}): a file run with plain node would get tap's 30 s. */
function tapTimeout() {
  try {
    return JSON.parse(readFileSync('package.json', 'utf8')).tap?.timeout ?? 600
  } catch {
    return 600
  }
}

function commandFor(file, tap) {
  return tap ? ['npx', 'tap', '--disable-coverage', file] : [process.execPath, file]
}

/** Runs one file under /usr/bin/time; resolves with its wall, CPU and exit code. */
function timeFile(file, options, scratch, index) {
  const timesFile = join(scratch, `times-${index}`)
  const args = ['-f', '%e %U %S', '-o', timesFile, ...commandFor(file, options.tap)]
  return new Promise((resolve) => {
    const child = spawn('/usr/bin/time', args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TAP_TIMEOUT: String(tapTimeout()) } })
    let tail = ''
    const keepTail = (chunk) => { tail = (tail + chunk.toString()).slice(-4000) }
    child.stdout.on('data', keepTail)
    child.stderr.on('data', keepTail)
    child.on('close', (code) => {
      const [wall, user, sys] = readFileSync(timesFile, 'utf8').trim().split('\n').at(-1).split(' ').map(Number)
      resolve({ file, code, wall, cpu: user + sys, user, sys, tail: code === 0 ? '' : tail })
    })
  })
}

async function runAll(files, options) {
  const scratch = mkdtempSync(join(tmpdir(), 'quark-test-times-'))
  const rows = []
  let next = 0
  async function worker() {
    while (next < files.length) {
      const index = next++
      const row = await timeFile(files[index], options, scratch, index)
      rows.push(row)
      process.stderr.write(`${String(rows.length).padStart(3)}/${files.length} ${format(row)}\n`)
    }
  }
  try {
    await Promise.all(Array.from({ length: Math.min(options.jobs, files.length) }, worker))
  } finally {
    rmSync(scratch, { recursive: true, force: true })
  }
  return rows
}

function format(row) {
  const wait = Math.max(0, row.wall - row.cpu)
  return `${row.cpu.toFixed(1).padStart(7)} ${row.wall.toFixed(1).padStart(7)} ${wait.toFixed(1).padStart(7)}  ${row.code === 0 ? 'ok  ' : `FAIL(${row.code})`} ${row.file}`
}

function printTable(rows, top) {
  const sorted = [...rows].sort((a, b) => b.cpu - a.cpu)
  const shown = top > 0 ? sorted.slice(0, top) : sorted
  console.log(`${'CPU s'.padStart(7)} ${'wall s'.padStart(7)} ${'wait s'.padStart(7)}  exit file`)
  for (const row of shown) console.log(format(row))
  const sum = (key) => rows.reduce((total, row) => total + row[key], 0)
  const waited = rows.reduce((total, row) => total + Math.max(0, row.wall - row.cpu), 0)
  console.log(`${sum('cpu').toFixed(1).padStart(7)} ${sum('wall').toFixed(1).padStart(7)} ${waited.toFixed(1).padStart(7)}  total of ${rows.length} files, ${rows.filter((row) => row.code !== 0).length} failed`)
  const byWait = [...rows].sort((a, b) => (b.wall - b.cpu) - (a.wall - a.cpu)).slice(0, 10)
  console.log('most waiting (wall − CPU):', byWait.map((row) => `${row.file.replace(/^dist\/test\//, '')} ${(row.wall - row.cpu).toFixed(1)}`).join(', '))
  for (const row of rows.filter((r) => r.code !== 0)) console.log(`--- ${row.file} (exit ${row.code}), last output:\n${row.tail}`)
}

const options = parseArgs(process.argv.slice(2))
const files = testFiles(options.patterns)
const loadBefore = loadavg().map((n) => n.toFixed(2)).join(' ')
const started = Date.now()
console.log(`${files.length} files, ${options.jobs} at a time, ${options.tap ? 'tap --disable-coverage' : 'node'}, node ${process.version}, ${availableParallelism()} cores, load average ${loadBefore}`)
const rows = await runAll(files, options)
printTable(rows, options.top)
console.log(`elapsed ${((Date.now() - started) / 1000).toFixed(0)} s; load average before ${loadBefore}, after ${loadavg().map((n) => n.toFixed(2)).join(' ')}`)
if (options.json) writeFileSync(options.json, JSON.stringify({ loadBefore, jobs: options.jobs, rows }, null, 2))
process.exitCode = rows.some((row) => row.code !== 0) ? 1 : 0
