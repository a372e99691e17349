import { S3Client } from '@aws-sdk/client-s3';
import { UndiciHttpHandler } from '@smithy/undici-http-handler';
import { Agent, ProxyAgent, type Dispatcher } from 'undici';
import type { RuntimeSettings } from 'quark/sdk';
import type { S3Config } from './config.js';

export interface ClientOptions {
  /** 1 for probes, so that the SDK does not hide clock skew or a refusal behind retries. */
  maxAttempts?: number;
  /** Sockets per origin: sized for concurrent multipart parts. */
  connections?: number;
  connectTimeoutMs?: number;
}

export function endpointOf(config: S3Config): string {
  return config.endpoint ?? `https://s3.${config.region}.amazonaws.com`;
}

export function proxyUrl(runtime: RuntimeSettings): string | undefined {
  return runtime.proxy ? `http://${runtime.proxy.host}:${runtime.proxy.port}` : undefined;
}

/**
 * The undici dispatcher for a connection: through the runtime's proxy (with the
 * connection's proxy credentials) when there is one, else direct.
 */
export function createDispatcher(config: S3Config, runtime: RuntimeSettings, options: ClientOptions = {}): Dispatcher {
  const connect = { timeout: options.connectTimeoutMs ?? 10_000 };
  const uri = proxyUrl(runtime);
  if (!uri) return new Agent({ connections: options.connections ?? 16, connect });
  const token = config.proxyUser !== undefined && config.proxyUser !== ''
    ? `Basic ${Buffer.from(`${config.proxyUser}:${config.proxyPassword ?? ''}`).toString('base64')}`
    : undefined;
  return new ProxyAgent({ uri, ...(token ? { token } : {}), connections: options.connections ?? 16, connect, proxyTls: connect, requestTls: connect });
}

export function createS3Client(config: S3Config, runtime: RuntimeSettings, options: ClientOptions = {}): { client: S3Client; dispatcher: Dispatcher } {
  const dispatcher = createDispatcher(config, runtime, options);
  const compatible = config.endpoint !== undefined;
  const client = new S3Client({
    region: config.region,
    credentials: { accessKeyId: config.awsAccessKey, secretAccessKey: config.awsSecretKey },
    ...(compatible
      ? {
          endpoint: config.endpoint,
          // MinIO, Ceph RGW, R2 and s3rver do not all take aws-chunked trailing checksums
          requestChecksumCalculation: 'WHEN_REQUIRED' as const,
          responseChecksumValidation: 'WHEN_REQUIRED' as const,
        }
      : {}),
    forcePathStyle: config.forcePathStyle ?? false,
    maxAttempts: options.maxAttempts ?? 3,
    requestHandler: new UndiciHttpHandler({ dispatcher }),
  });
  return { client, dispatcher };
}
