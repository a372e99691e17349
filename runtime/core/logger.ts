import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** Paths redacted in every log line whatever the connectors declare. */
export const baseRedactPaths: readonly string[] = [
  'req.headers.authorization',
  'headers.authorization',
  'authorization',
  'token',
  '*.token',
  'secret',
  '*.secret',
  'password',
  '*.password',
];

export interface LoggerOptions {
  level?: string;
  /** Human-readable output; defaults to whether stdout is a terminal. */
  pretty?: boolean;
  /** Extra redaction paths (derived from connector schemas' secret marks). */
  redact?: readonly string[];
  destination?: DestinationStream;
}

/**
 * The one logger factory. Redaction is compiled here, once; scopes (request, connector,
 * test) get child loggers from the instance this returns.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const redact = { paths: [...new Set([...baseRedactPaths, ...(options.redact ?? [])])], censor: '[redacted]' };
  const level = options.level ?? 'info';
  if (options.destination !== undefined) {
    return pino({ level, redact }, options.destination);
  }
  const pretty = options.pretty ?? process.stdout.isTTY === true;
  if (pretty) {
    return pino({ level, redact, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } });
  }
  return pino({ level, redact });
}
