import t from 'tap';
import { createSecretBox, generateMasterKey } from '../../runtime/secrets/secret-box.js';
import { deleteAt, getAt, redactPathsFor, scrubText, secretPointers, setAt } from '../../runtime/secrets/secret-fields.js';
import { createLogger } from '../../runtime/core/logger.js';
import { Writable } from 'node:stream';

t.test('secret box: AES-256-GCM bound to its connection and field', async (t) => {
  const box = createSecretBox(generateMasterKey());
  const sealed = box.encrypt('hunter2-hunter2', 'conn_1#/password');
  t.notMatch(sealed, /hunter2/);
  t.equal(box.decrypt(sealed, 'conn_1#/password'), 'hunter2-hunter2');
  t.not(box.encrypt('hunter2-hunter2', 'conn_1#/password'), sealed, 'a fresh IV each time');
  t.throws(() => box.decrypt(sealed, 'conn_2#/password'), { code: 'QUARK_ERR_SECRET_UNREADABLE' }, 'moved to another connection: refused');
  const [v, iv, tag, body] = sealed.split('.');
  const flipped = Buffer.from(body!, 'base64url');
  flipped[0]! ^= 1;
  t.throws(() => box.decrypt([v, iv, tag, flipped.toString('base64url')].join('.'), 'conn_1#/password'), { code: 'QUARK_ERR_SECRET_UNREADABLE' }, 'tampered: refused');
  t.throws(() => createSecretBox(Buffer.alloc(16)), { code: 'QUARK_ERR_MASTER_KEY_INVALID' });
  t.throws(() => createSecretBox(generateMasterKey()).decrypt(sealed, 'conn_1#/password'), { code: 'QUARK_ERR_SECRET_UNREADABLE' }, 'another key: refused');
});

t.test('secret marks: pointers at any depth, redaction paths, scrubbing', async (t) => {
  const schema = {
    type: 'object',
    properties: {
      user: { type: 'string', title: 'User' },
      'api/key': { type: 'string', title: 'Key', 'x-secret': true },
      proxy: { type: 'object', title: 'Proxy', properties: { password: { type: 'string', title: 'P', 'x-secret': true } } },
    },
  };
  const pointers = secretPointers(schema);
  t.same(pointers, ['/api~1key', '/proxy/password']);
  const doc: Record<string, unknown> = { user: 'u', 'api/key': 'k-123456', proxy: { password: 'p-123456' } };
  t.equal(getAt(doc, '/api~1key'), 'k-123456');
  setAt(doc, '/proxy/password', 'p-2');
  t.equal(getAt(doc, '/proxy/password'), 'p-2');
  deleteAt(doc, '/api~1key');
  t.same(doc, { user: 'u', proxy: { password: 'p-2' } });

  const lines: string[] = [];
  const destination = new Writable({ write(chunk, _enc, done) { lines.push(String(chunk)); done(); } });
  const logger = createLogger({ destination, redact: redactPathsFor(pointers), level: 'debug' });
  logger.info({ config: { user: 'u', 'api/key': 'k-SECRET-1', proxy: { password: 'p-SECRET-2' } } }, 'configured');
  logger.info({ request: { config: { 'api/key': 'k-SECRET-3' } } }, 'nested');
  logger.info({ token: 'qk_SECRET-4', password: 'SECRET-5' }, 'base paths');
  const out = lines.join('');
  for (const s of ['k-SECRET-1', 'p-SECRET-2', 'k-SECRET-3', 'qk_SECRET-4', 'SECRET-5']) t.notOk(out.includes(s), `${s} redacted`);
  t.match(out, /"user":"u"/, 'other fields stay');

  t.equal(scrubText('key k-123456 was refused; k-123456 again', ['k-123456']), 'key [redacted] was refused; [redacted] again');
});
