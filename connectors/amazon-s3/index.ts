import { defineConnector } from 'quark/sdk';
import type { S3Config } from './config.js';
import { testConnection } from './test-connection.js';
import { copy, create, get, query, remove, upsert } from './operations.js';
import { recover } from './recover.js';

export default defineConnector<S3Config>({
  testConnection,
  operations: { get, query, create, upsert, delete: remove, copy },
  recover,
});
