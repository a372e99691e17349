import { createHash } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type { RuntimeSettings } from 'quark/sdk';
import { createS3Client, type Transport } from './client.js';
import type { S3Config } from './config.js';

interface Entry {
  client: S3Client;
  transport: Transport;
}

const maxClients = 16;

/**
 * One client per connection configuration per worker, reused across calls (keep-alive
 * sockets, resolved endpoints). Keyed by a hash of the configuration, so a changed key or
 * secret gets a new client; the oldest is closed beyond 16.
 */
export function createClientCache() {
  const entries = new Map<string, Entry>();
  return {
    get(config: S3Config, runtime: RuntimeSettings): S3Client {
      const id = createHash('sha256').update(JSON.stringify([config, runtime])).digest('hex');
      let entry = entries.get(id);
      if (entry) {
        entries.delete(id);
        entries.set(id, entry);
        return entry.client;
      }
      entry = createS3Client(config, runtime, { connections: 32, rawGets: true });
      entries.set(id, entry);
      if (entries.size > maxClients) {
        const [oldestId, oldest] = entries.entries().next().value as [string, Entry];
        entries.delete(oldestId);
        oldest.client.destroy();
        oldest.transport.destroy();
      }
      return entry.client;
    },
  };
}
