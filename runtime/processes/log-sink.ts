/**
 * An execution's log file. Lines are gathered in memory and appended in one write when
 * 64 KiB have gathered, a second has passed, or the execution ends: a short execution
 * costs one open and one write instead of a file descriptor held for its life. A killed
 * runtime loses at most the last second of lines; the restart appends why it ended.
 */
import { appendFileSync } from 'node:fs';

export interface LogSink {
  write(line: string): void;
  /** Writes what is gathered and stops the timer. */
  end(): void;
}

export function createLogSink(file: string, options: { maxBytes?: number; maxDelayMs?: number } = {}): LogSink {
  const maxBytes = options.maxBytes ?? 64 * 1024;
  const maxDelayMs = options.maxDelayMs ?? 1000;
  let lines: string[] = [];
  let bytes = 0;
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (lines.length === 0) return;
    const text = lines.join('');
    lines = [];
    bytes = 0;
    appendFileSync(file, text, { mode: 0o600 });
  };
  return {
    write(line) {
      lines.push(line);
      bytes += line.length;
      if (bytes >= maxBytes) flush();
      else if (!timer) {
        timer = setTimeout(flush, maxDelayMs);
        timer.unref();
      }
    },
    end: flush,
  };
}
