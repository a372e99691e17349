// Records a benchmark's section at the top of a results file (bench/RESULTS.md), newest first.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export function prependResults(file, text) {
  if (!existsSync(file)) writeFileSync(file, '# Benchmark results\n\nRecorded by the scripts in bench/. Newest first.\n\n');
  const [head, ...rest] = readFileSync(file, 'utf8').split(/(?=^## )/m);
  writeFileSync(file, [head, text + '\n', ...rest].join(''));
}
