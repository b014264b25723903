/**
 * The JSON shape of `qmpx serve --config FILE` (lib/proxy/config.ts turns a
 * checked file into a ServeConfig): the schema ajv checks it with, and the
 * unknown-key check that names a misspelt key, which ajv's own words do not.
 */
import { QmpxError } from '../errors.js';
import { compileSchema } from '../schema.js';
import { natsConfigSchema, type NatsConfigFile } from '../nats/config.js';

export type ServeLogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/** What a monitor's QMP sockets do with arguments its QEMU's schema does not take. */
export type ValidateSetting = 'off' | 'reject';

/** The config file as written (before defaults). */
export interface ConfigFile {
  logLevel?: ServeLogLevel;
  socketMode?: string | number;
  maxClientBufferBytes?: number;
  maxConnections?: number;
  maxConnectionsPerSocket?: number;
  audit?: { path: string; arguments?: boolean };
  libvirt?: string;
  metrics?: string;
  control?: string;
  watchdogSeconds?: number;
  nats?: NatsConfigFile;
  monitors: Array<{
    name?: string;
    upstream?: string;
    launch?: { args?: string[]; binary?: string; env?: Record<string, string>; restart?: boolean };
    qmp?: string;
    hmp?: string;
    readOnly?: string;
    readOnlyDeny?: string[];
    validate?: ValidateSetting;
    acceptFds?: boolean;
    libvirt?: string;
    libvirtReadOnly?: string;
    agent?: string;
    socketMode?: string | number;
    maxClientBufferBytes?: number;
  }>;
}

// A number is let through the schema only to be refused with a clearer word than ajv's (socketModeOf).
const socketModeSchema = {
  anyOf: [{ type: 'string', pattern: '^0?[0-7]{3}$' }, { type: 'number' }],
};
const pathSchema = { type: 'string', minLength: 1 };

const configFileSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['monitors'],
  properties: {
    logLevel: { enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] },
    socketMode: socketModeSchema,
    maxClientBufferBytes: { type: 'integer', minimum: 1024 },
    maxConnections: { type: 'integer', minimum: 1 },
    maxConnectionsPerSocket: { type: 'integer', minimum: 1 },
    audit: {
      type: 'object',
      additionalProperties: false,
      required: ['path'],
      properties: { path: pathSchema, arguments: { type: 'boolean' } },
    },
    libvirt: pathSchema,
    metrics: { type: 'string', minLength: 1 },
    control: pathSchema,
    watchdogSeconds: { type: 'number', minimum: 0 },
    nats: natsConfigSchema,
    monitors: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        properties: {
          name: { type: 'string', minLength: 1 },
          upstream: pathSchema,
          launch: {
            type: 'object',
            additionalProperties: false,
            properties: {
              args: { type: 'array', items: { type: 'string' } },
              binary: pathSchema,
              env: { type: 'object', additionalProperties: { type: 'string' } },
              restart: { type: 'boolean' },
            },
          },
          qmp: pathSchema,
          hmp: pathSchema,
          readOnly: pathSchema,
          readOnlyDeny: { type: 'array', items: { type: 'string', minLength: 1 } },
          validate: { enum: ['off', 'reject'] },
          acceptFds: { type: 'boolean' },
          libvirt: pathSchema,
          libvirtReadOnly: pathSchema,
          agent: pathSchema,
          socketMode: socketModeSchema,
          maxClientBufferBytes: { type: 'integer', minimum: 1024 },
        },
      },
    },
  },
};
const isConfigFile = compileSchema<ConfigFile>(configFileSchema);

/** The parts of a JSON schema that say which keys an object may have. */
interface SchemaShape {
  additionalProperties?: unknown;
  properties?: Record<string, SchemaShape>;
  items?: SchemaShape;
  [keyword: string]: unknown;
}

/**
 * The first key of `value` that `schema` does not know, as
 * `/monitors/0: unknown key "upstrem" (did you mean "upstream"?)`: ajv's own
 * words ("must NOT have additional properties") do not name it.
 */
function unknownKeyProblem(value: unknown, schema: SchemaShape, at: string): string | undefined {
  if (Array.isArray(value)) {
    if (schema.items === undefined) return undefined;
    for (let index = 0; index < value.length; index++) {
      const problem = unknownKeyProblem(value[index], schema.items, `${at}/${index}`);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }
  if (typeof value !== 'object' || value === null || schema.properties === undefined) return undefined;
  // for...in, not Object.entries(): no array of pairs per object of a config of many monitors.
  for (const key in value) {
    const item = (value as Record<string, unknown>)[key];
    const known = schema.properties[key];
    if (known === undefined) {
      if (schema.additionalProperties !== false) continue;
      const near = Object.keys(schema.properties).find((name) => editDistance(name, key) <= 2);
      return `${at || '(top level)'}: unknown key ${JSON.stringify(key)}${near === undefined ? '' : ` (did you mean ${JSON.stringify(near)}?)`}`;
    }
    // A leaf holds no keys: its path is not built (a config of many monitors has thousands).
    if (typeof item !== 'object' || item === null) continue;
    const problem = unknownKeyProblem(item, known, `${at}/${key}`);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/** Levenshtein distance, for suggesting the key a misspelt one meant. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * `value` as a config file, or a QmpxError naming `source` and the first
 * problem: an unknown key (with the key it may have meant), else ajv's.
 */
export function checkedConfigFile(value: unknown, source: string): ConfigFile {
  const unknownKey = unknownKeyProblem(value, configFileSchema, '');
  if (unknownKey !== undefined) throw new QmpxError(`${source}: invalid config: ${unknownKey}`);
  if (!isConfigFile(value)) throw new QmpxError(`${source}: invalid config: ${isConfigFile.explain()}`);
  return value;
}
