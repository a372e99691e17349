import { defineConnector } from 'quark/sdk';
import type { HttpConfig } from './config.js';
import { createOperations } from './operations.js';
import { testConnection } from './test-connection.js';

/** The HTTP client connector: an external plugin, importing only quark/sdk and undici. */
export default defineConnector<HttpConfig>({
  testConnection,
  operations: createOperations(),
});
