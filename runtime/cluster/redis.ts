/**
 * The Redis a molecule dispatches through: its connections (ioredis, as BullMQ wants
 * them) and the check at start that it will not lose jobs — `maxmemory-policy
 * noeviction` (an evicting Redis drops keys, queued jobs among them) and AOF on (without
 * it a restart loses what was queued since the last snapshot).
 */
import { Redis } from 'ioredis';
import { quarkError, messageOf } from '../core/errors.js';

/** Where the queue is, for messages: host and port, never the password. */
export function redisAddress(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname || 'localhost'}:${parsed.port || '6379'}`;
  } catch {
    return 'the configured address';
  }
}

/** A connection for BullMQ (workers need maxRetriesPerRequest null: their blocking commands wait). */
export function redisConnection(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, lazyConnect: false });
}

/** One field of INFO's text ("name:value" lines). */
function infoField(info: string, name: string): string | undefined {
  return new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

/** The settings that make Redis safe for a queue, as problems in words; none when safe. */
export function unsafeSettings(info: string): { setting: string; value: string; message: string }[] {
  const policy = infoField(info, 'maxmemory_policy') ?? 'unknown';
  const aof = infoField(info, 'aof_enabled') ?? 'unknown';
  return [
    ...(policy === 'noeviction' ? [] : [{ setting: 'maxmemory-policy', value: policy, message: `maxmemory-policy is ${policy}: Redis may evict queued jobs under memory pressure; set it to noeviction` }]),
    ...(aof === '1' ? [] : [{ setting: 'appendonly', value: aof === '0' ? 'no' : aof, message: 'appendonly is off: a Redis restart loses the jobs queued since its last snapshot; set appendonly yes' }]),
  ];
}

/**
 * Connects once and reads INFO (which needs no CONFIG permission, so it works on managed
 * Redis too). QUARK_ERR_QUEUE_UNAVAILABLE when it does not answer, QUARK_ERR_QUEUE_UNSAFE
 * when a setting would lose jobs.
 */
export async function checkRedis(url: string, timeoutMs = 5000): Promise<void> {
  const address = redisAddress(url);
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: timeoutMs, retryStrategy: () => null, enableOfflineQueue: false });
  // a failed connect also emits 'error'; the rejection below says it
  client.on('error', () => undefined);
  let info: string;
  try {
    await client.connect();
    info = (await client.info('memory')) + '\n' + (await client.info('persistence'));
  } catch (error) {
    throw quarkError('QUARK_ERR_QUEUE_UNAVAILABLE', `Redis at ${address} (queue.url) cannot be reached: ${messageOf(error)}`, undefined, error);
  } finally {
    client.disconnect();
  }
  const problems = unsafeSettings(info);
  if (problems.length > 0) {
    throw quarkError('QUARK_ERR_QUEUE_UNSAFE', `Redis at ${address} would lose queued executions: ${problems.map((p) => p.message).join('; ')}`, {
      problems: problems.map((p) => ({ path: `/queue/url (Redis ${p.setting})`, message: p.message, setting: p.setting, value: p.value })),
    });
  }
}
