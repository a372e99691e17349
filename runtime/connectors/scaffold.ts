/**
 * `quark connector new <id>`: writes a connector folder that passes
 * `quark connector validate` and its own test as generated.
 *
 * The module is plain ESM JavaScript with JSDoc types (`// @ts-check`): a runtime loads
 * `entry` as it is, so there is no build step to forget, no tsconfig to keep in line
 * with the runtime's, and an editor still type-checks it against `quark/sdk`.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { quarkError } from '../core/errors.js';
import { quarkVersion } from '../core/paths.js';
import { RUNTIME_API_VERSION } from '../sdk/index.js';

export const connectorIdPattern = /^[a-z][a-z0-9-]{1,62}$/;

export interface ScaffoldOptions {
  id: string;
  /** The folder to create the connector folder in (default: the current folder). */
  parent?: string;
  /** Display name (default: the id in title case). */
  name?: string;
}

export interface ScaffoldResult {
  dir: string;
  files: string[];
}

function titleOf(id: string): string {
  return id
    .split('-')
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join(' ');
}

const json = (value: unknown) => JSON.stringify(value, null, 2) + '\n';

/** The quark versions the generated plugin develops against: this one's major.minor, upward. */
function quarkRange(): string {
  const [major, minor] = quarkVersion.split('.');
  return `^${major}.${minor}.0`;
}

function files(id: string, name: string): Record<string, string> {
  const major = RUNTIME_API_VERSION.split('.')[0];
  return {
    'connector.json': json({
      id,
      name,
      version: '0.1.0',
      description: `${name}: describe what it connects to and what Test Connection checks.`,
      runtimeApi: `^${major}.0.0`,
      entry: 'index.js',
      connectionSchema: 'connection.schema.json',
      testConnection: true,
      operations: [
        {
          id: 'greet',
          name: 'Greet',
          kind: 'execute',
          description: 'Answers each document with a greeting for the name in its body.',
          parameters: 'operations/greet.schema.json',
        },
      ],
    }),
    'connection.schema.json': json({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      title: `${name} connection`,
      'x-groups': [
        { id: 'behaviour', title: 'Behaviour' },
        { id: 'credentials', title: 'Credentials' },
      ],
      required: ['apiKey'],
      additionalProperties: false,
      properties: {
        greeting: {
          title: 'Greeting',
          description: 'The word the greeting starts with.',
          type: 'string',
          minLength: 1,
          default: 'Hello',
          'x-order': 1,
          'x-group': 'behaviour',
        },
        style: {
          title: 'Style',
          type: 'string',
          enum: ['plain', 'shout'],
          'x-enum-labels': { plain: 'Plain', shout: 'Shout (upper case)' },
          default: 'plain',
          'x-order': 2,
          'x-group': 'behaviour',
        },
        apiKey: {
          title: 'API key',
          description: 'An example secret field: encrypted at rest, never returned by the API, redacted from logs.',
          type: 'string',
          minLength: 8,
          'x-secret': true,
          'x-order': 3,
          'x-group': 'credentials',
          'x-help': 'Keys of this example start with "k-".',
        },
      },
    }),
    'operations/greet.schema.json': json({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      additionalProperties: false,
      properties: {
        punctuation: { type: 'string', maxLength: 3, default: '!', description: 'What ends the greeting.' },
      },
    }),
    'index.js': `// @ts-check
/**
 * The ${name} connector. Plain ESM JavaScript with JSDoc types: a quark runtime loads this
 * file as it is (no build step); editors type-check it against quark/sdk.
 */
import { defineConnector, check, result } from 'quark/sdk';

/**
 * The connection configuration, as connection.schema.json describes it (secrets decrypted).
 * @typedef {{ greeting?: string, style?: 'plain' | 'shout', apiKey: string }} Config
 */

/**
 * Answers each input document with exactly one result. Honour the signal: stop, and
 * clean up what you started, when it is aborted.
 * @type {import('quark/sdk').OperationHandler<Config, { punctuation?: string }>}
 */
async function greet({ config, parameters, signal, log }, document) {
  if (signal.aborted) return result.failure('cancelled', { code: 'Cancelled' });
  const who = (await document.body.text()).trim() || 'world';
  let text = \`\${config.greeting ?? 'Hello'}, \${who}\${parameters.punctuation ?? '!'}\`;
  if (config.style === 'shout') text = text.toUpperCase();
  // log objects, never secrets: the runtime redacts secret fields, but do not count on it
  log.debug('greeted', { length: text.length });
  return result.success({ body: text, properties: { 'greeting.length': String(text.length) } });
}

export default defineConnector({
  /**
   * Test Connection: one check per thing you verify, each with a message that tells the
   * operator what to do. Never throw: a failure is a failed check.
   * @param {import('quark/sdk').TestContext<Config>} context
   */
  async testConnection({ config }) {
    // Replace with a real call to your endpoint (pass \`signal\` to every I/O call).
    if (!String(config.apiKey ?? '').startsWith('k-')) {
      return { checks: [check.failed('credentials', 'The API key is not valid: keys start with "k-".', { code: 'InvalidKey' })] };
    }
    return { checks: [check.ok('credentials', 'The API key is accepted.')] };
  },
  operations: { greet },
});
`,
    'test/connector.test.js': `import t from 'tap';
import { assertConformance, memoryBody } from 'quark/sdk/testing';
import connector from '../index.js';

const dir = new URL('..', import.meta.url);
const config = { greeting: 'Hello', style: 'plain', apiKey: 'k-example-0001' };

t.test('the quark conformance kit', async (t) => {
  const report = await assertConformance(t, {
    dir,
    config,
    operations: { greet: { parameters: { punctuation: '!' }, documents: [{ body: 'Ada' }, { body: 'Grace' }] } },
  });
  t.ok(report.ok, 'the connector conforms');
});

t.test('greet answers with a greeting', async (t) => {
  const context = { config, parameters: {}, signal: new AbortController().signal, runtime: {}, log: { debug() {}, info() {}, warn() {}, error() {} }, progress() {} };
  const answer = await connector.operations.greet(context, { properties: {}, body: memoryBody('Ada') });
  t.same(answer, { status: 'success', documents: [{ body: 'Hello, Ada!', properties: { 'greeting.length': '11' } }] });
});

t.test('Test Connection refuses a key of the wrong form', async (t) => {
  const report = await connector.testConnection({ config: { apiKey: 'nope-nope' }, signal: new AbortController().signal, runtime: {}, log: { debug() {}, info() {}, warn() {}, error() {} } });
  t.equal(report.checks[0].status, 'failed');
});
`,
    'package.json': json({
      name: `quark-connector-${id}`,
      version: '0.1.0',
      private: true,
      type: 'module',
      description: `${name}: a quark connector plugin.`,
      scripts: {
        validate: 'quark connector validate .',
        typecheck: 'tsc -p jsconfig.json',
        test: 'tap test/*.test.js',
      },
      // quark/sdk is supplied by the runtime that loads the plugin; for types and the
      // testing kit, `npm link quark` links the quark this machine runs. An optional peer:
      // npm does not fetch it (the npm registry's "quark" is another package), and checks
      // the range when it is there. No file: path, so the folder works on any machine.
      peerDependencies: { quark: quarkRange() },
      peerDependenciesMeta: { quark: { optional: true } },
      devDependencies: {
        '@types/node': '^20.19.43',
        tap: '^21.8.0',
        typescript: '^5.9.3',
      },
      tap: { 'disable-coverage': true, 'allow-empty-coverage': true, plugin: ['!@tapjs/typescript'] },
    }),
    'jsconfig.json': json({
      compilerOptions: { allowJs: true, checkJs: true, noEmit: true, strict: true, skipLibCheck: true, maxNodeModuleJsDepth: 0, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', types: ['node'] },
      include: ['index.js'],
    }),
    '.gitignore': 'node_modules/\n',
    'README.md': `# ${name} (quark connector)

A connector plugin for quark, made by \`quark connector new ${id}\`; quark's \`docs/connectors.md\` is the guide.

| file | what it is |
| --- | --- |
| \`connector.json\` | the manifest: id, version, runtime API range, entry module, connection schema, operations |
| \`connection.schema.json\` | the connection's fields (JSON Schema 2020-12 with quark's \`x-*\` annotations); \`apiKey\` is an example secret field |
| \`operations/greet.schema.json\` | the parameters of the \`greet\` operation |
| \`index.js\` | the module: \`defineConnector({ testConnection, operations })\`, plain ESM JavaScript with JSDoc types |
| \`test/connector.test.js\` | a tap test: the quark conformance kit, plus tests of its own |
| \`jsconfig.json\` | type-checks \`index.js\` against \`quark/sdk\` (editors read it; \`npm run typecheck\`) |

## Develop

\`\`\`sh
npm install                        # tap and typescript
npm link quark                     # quark/sdk and quark/sdk/testing, from the quark you run
npx quark connector validate .     # the spec rules and a trial import: exit 0 when all is well
npm run typecheck                  # the JSDoc types against quark/sdk
npm test                           # the conformance kit and the connector's own tests
\`\`\`

\`npm link quark\` links the quark installed globally (\`npm install -g\`, or \`npm link\` run
once in quark's own folder); \`package.json\` names it as an optional peer dependency
(quark ${quarkRange()}), so npm checks the version but never fetches it.

## Load it into a runtime

Add this folder (or its parent) to \`plugins.paths\` in the runtime's \`config.json\` and
restart the runtime; \`quark connectors list\` shows it, or why it was quarantined.
`,
  };
}

/** Writes a new connector folder `<parent>/<id>`; refuses an id that is not valid or a folder that is not empty. */
export function scaffoldConnector(options: ScaffoldOptions): ScaffoldResult {
  if (!connectorIdPattern.test(options.id)) {
    throw quarkError('QUARK_ERR_CLI_INPUT_INVALID', `"${options.id}" is not a connector id: lower-case letters, digits and dashes, starting with a letter, 2 to 63 characters`);
  }
  const dir = resolve(options.parent ?? '.', options.id);
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw quarkError('QUARK_ERR_CLI_INPUT_INVALID', `${dir} already exists and is not empty`);
  }
  const written: string[] = [];
  for (const [file, text] of Object.entries(files(options.id, options.name ?? titleOf(options.id)))) {
    const path = join(dir, file);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    written.push(file);
  }
  return { dir, files: written };
}
