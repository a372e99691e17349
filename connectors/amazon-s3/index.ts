import { defineConnector } from 'quark/sdk';
import type { S3Config } from './config.js';
import { testConnection } from './test-connection.js';

export default defineConnector<S3Config>({ testConnection });
