import { HeadBucketCommand, ListBucketsCommand } from '@aws-sdk/client-s3';
import { check, type Check, type TestContext, type TestReport } from 'quark/sdk';
import { createS3Client, endpointOf, proxyUrl } from './client.js';
import { classify, proxyProblem, type Failure } from './errors.js';
import type { S3Config } from './config.js';

const titles = {
  proxy: 'HTTP proxy',
  endpoint: 'Endpoint reachable',
  credentials: 'Access key and secret key',
  bucket: 'Bucket',
};

/** A check with its title: the SDK's builder for the status. */
function reach(kind: keyof typeof titles, status: Check['status'], message: string, code?: string): Check {
  return check[status](kind, message, { title: titles[kind], ...(code ? { code } : {}) });
}

/** Checks skipped because an earlier one failed. */
function skipped(ids: (keyof typeof titles)[], because: string): Check[] {
  return ids.map((id) => reach(id, 'skipped', `not checked: ${because}`));
}

async function probe<T>(send: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await send() };
  } catch (error) {
    return { ok: false, error };
  }
}

/** What the operator reads when the first probe (ListBuckets) fails. */
function transportChecks(failure: Failure, config: S3Config, proxy: string | undefined, timeoutHint: string): Check[] | undefined {
  const endpoint = endpointOf(config);
  const proxyWords = proxyProblem(failure, { proxy, endpoint, credentials: Boolean(config.proxyUser) });
  if (proxyWords !== undefined) {
    const why = failure.kind === 'proxy-unreachable' ? 'the proxy is unreachable' : 'the proxy refused the connection';
    return [reach('proxy', 'failed', proxyWords, failure.code), ...skipped(['endpoint', 'credentials', 'bucket'], why)];
  }
  switch (failure.kind) {
    case 'endpoint-unreachable':
      return [
        ...(proxy ? [reach('proxy', 'ok', `connected through ${proxy}`)] : []),
        reach('endpoint', 'failed', `cannot connect to ${endpoint} (${failure.code}): check the endpoint URL${config.endpoint ? '' : ' and the region'} and this machine's network`, failure.code),
        ...skipped(['credentials', 'bucket'], 'the endpoint is unreachable'),
      ];
    case 'timeout':
      return [
        ...(proxy ? [reach('proxy', 'ok', `connected through ${proxy}`)] : []),
        reach('endpoint', 'failed', `no answer from ${endpoint} within ${timeoutHint} (timeout): the endpoint or a firewall drops the traffic`, 'Timeout'),
        ...skipped(['credentials', 'bucket'], 'the endpoint did not answer'),
      ];
    default:
      return undefined;
  }
}

function credentialsCheck(failure: Failure, config: S3Config): Check {
  const endpoint = endpointOf(config);
  switch (failure.kind) {
    case 'unknown-access-key':
      return reach('credentials', 'failed', `the access key ${config.awsAccessKey} is not known to ${endpoint}: check "AWS access key" (copy it again from IAM; it may have been deleted or deactivated)`, failure.code);
    case 'wrong-secret-key':
      return reach('credentials', 'failed', `the access key ${config.awsAccessKey} exists but the secret key does not match it: enter "AWS secret key" again`, failure.code);
    case 'clock-skew': {
      const by = failure.skewSeconds !== undefined ? ` by about ${Math.abs(failure.skewSeconds)} s (this machine is ${failure.skewSeconds > 0 ? 'behind' : 'ahead'})` : '';
      return reach('credentials', 'failed', `this machine's clock differs from the server's${by}; S3 refuses requests more than 15 minutes off: synchronise the clock (NTP)`, failure.code);
    }
    default:
      return reach('credentials', 'failed', `the server refused the keys: ${failure.code}${failure.status ? ` (HTTP ${failure.status})` : ''}: ${failure.detail}`, failure.code);
  }
}

function bucketCheck(failure: Failure, config: S3Config): Check {
  switch (failure.kind) {
    case 'not-found':
      return reach('bucket', 'warning', `the bucket "${config.bucket}" does not exist at ${endpointOf(config)}: check "Amazon S3 bucket"; operations on this connection will fail`, 'NoSuchBucket');
    case 'access-denied':
      return reach('bucket', 'warning', `the keys are valid but have no access to the bucket "${config.bucket}" (HTTP 403): grant s3:ListBucket, s3:GetObject, s3:PutObject on it to this user, or choose another bucket`, 'AccessDenied');
    case 'wrong-region':
      return reach('bucket', 'warning', failure.region
        ? `the bucket "${config.bucket}" is in region ${failure.region}, not ${config.region}: set "AWS region" to ${failure.region}`
        : `the bucket "${config.bucket}" is not in region ${config.region}: check "AWS region"`, 'WrongRegion');
    default:
      return reach('bucket', 'warning', `the bucket "${config.bucket}" could not be checked: ${failure.code}: ${failure.detail}`, failure.code);
  }
}

/**
 * Test Connection: ListBuckets proves the transport (proxy, endpoint) and the keys;
 * HeadBucket then checks the bucket. Credentials decide pass/fail; a bucket problem is a
 * warning. Probes run with one attempt so the SDK neither retries nor corrects clock skew.
 */
export async function testConnection({ config, runtime, signal }: TestContext<S3Config>): Promise<TestReport> {
  const proxy = proxyUrl(runtime);
  const { client, transport } = createS3Client(config, runtime, { maxAttempts: 1, connections: 2 });
  const context = { viaProxy: proxy !== undefined, signal };
  try {
    const checks: Check[] = [];
    const keys = await probe(() => client.send(new ListBucketsCommand({ MaxBuckets: 1 }), { abortSignal: signal }));
    if (!keys.ok) {
      const failure = classify(keys.error, context);
      const transport = transportChecks(failure, config, proxy, 'the time limit');
      if (transport) return { checks: transport };
      if (proxy) checks.push(reach('proxy', 'ok', `connected through ${proxy}`));
      checks.push(reach('endpoint', 'ok', `${endpointOf(config)} answered`));
      if (failure.kind !== 'access-denied') {
        return { checks: [...checks, credentialsCheck(failure, config), ...skipped(['bucket'], 'the keys were refused')] };
      }
      // AccessDenied on ListBuckets: the signature was accepted, the user may just not list buckets
      checks.push(reach('credentials', 'ok', `the keys are valid (the user may not list all buckets, which is fine)`));
    } else {
      if (proxy) checks.push(reach('proxy', 'ok', `connected through ${proxy}`));
      checks.push(reach('endpoint', 'ok', `${endpointOf(config)} answered`));
      checks.push(reach('credentials', 'ok', `the keys are valid for ${endpointOf(config)}`));
    }

    const bucket = await probe(() => client.send(new HeadBucketCommand({ Bucket: config.bucket }), { abortSignal: signal }));
    if (bucket.ok) {
      const region = bucket.value.BucketRegion;
      checks.push(
        region && config.endpoint === undefined && region !== config.region
          ? bucketCheck({ kind: 'wrong-region', code: 'WrongRegion', region, detail: '' }, config)
          : reach('bucket', 'ok', `the bucket "${config.bucket}" exists and is accessible`),
      );
    } else {
      const failure = classify(bucket.error, context);
      const transport = transportChecks(failure, config, proxy, 'the time limit');
      checks.push(transport ? { ...transport.find((c) => c.status === 'failed')!, id: 'bucket', title: titles.bucket, status: 'warning' } : bucketCheck(failure, config));
    }
    return { checks };
  } finally {
    client.destroy();
    transport.destroy();
  }
}
