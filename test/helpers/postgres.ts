import { createServer } from 'node:net';

/**
 * PostgreSQL for tests: the server .ci/run starts with ../shared/tools/services
 * (QUARK_TEST_POSTGRES_URL), a fresh schema or database per test, dropped afterwards.
 * Without the variable the tests that need it are skipped, saying why.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const postgresUrl: string | undefined = process.env.QUARK_TEST_POSTGRES_URL || undefined;

/** tap's `skip` option: false when there is a server, else the reason. */
export const postgresSkip: false | string = postgresUrl
  ? false
  : 'SKIPPED: QUARK_TEST_POSTGRES_URL is not set, so there is no PostgreSQL to test against (.ci/run starts one with ../shared/tools/services; locally: bash ../shared/tools/services/start.sh DIR && source DIR/services.env)';

interface Teardown {
  teardown(fn: () => unknown): void;
}

function requiredUrl(): string {
  if (!postgresUrl) throw new Error('QUARK_TEST_POSTGRES_URL is not set');
  return postgresUrl;
}

/** Runs one statement as the test server's superuser, on a connection of its own. */
export async function adminQuery(sql: string, values: unknown[] = [], url = requiredUrl()): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(sql, values);
  } finally {
    await client.end();
  }
}

const uniqueName = (prefix: string): string => `${prefix}_${process.pid}_${randomBytes(5).toString('hex')}`;

/** A new, empty schema in the test database, dropped with everything in it at teardown. */
export async function freshSchema(t: Teardown): Promise<string> {
  const schema = uniqueName('quark_test');
  await adminQuery(`CREATE SCHEMA ${schema}`);
  t.teardown(() => adminQuery(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
  return schema;
}

/** A new, empty database on the test server; its URL. Dropped at teardown (its connections ended first). */
export async function freshDatabase(t: Teardown): Promise<string> {
  const url = new URL(requiredUrl());
  const name = uniqueName('quark_test');
  await adminQuery(`CREATE DATABASE ${name}`);
  t.teardown(() => adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  url.pathname = `/${name}`;
  return url.toString();
}

/** A loopback port with nothing listening on it: a PostgreSQL that is not there. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
