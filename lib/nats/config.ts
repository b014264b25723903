/**
 * The `nats` settings of `qmpx serve`: where the fleet bridge connects, how
 * it authenticates, the host name in its subjects, and what it keeps in
 * JetStream. Read from the config file's `nats` key or from `--nats URL`.
 *
 *   "nats": {
 *     "servers": ["nats://nats1:4222", "nats://nats2:4222"],
 *     "host": "hv-17",
 *     "credentials": "/etc/qmpx/host.creds",          (or "user"/"password", or "token")
 *     "tls": { "ca": "/etc/qmpx/ca.pem", "cert": "...", "key": "..." },
 *     "jetStream": { "stream": "QMPX_EVENTS", "maxAgeSeconds": 86400, "maxBytes": 1073741824,
 *                    "duplicateWindowSeconds": 120 },
 *     "runState": true,
 *     "maxBufferedEvents": 10000
 *   }
 *
 * No NATS client is imported here: the config is read by every `serve`,
 * the client only by one that connects.
 */
import { hostname } from 'node:os';
import { QmpxError } from '../errors.js';

/** Events one process holds while NATS is unreachable (or unacknowledged, with JetStream); past it new ones are dropped and counted. */
export const DEFAULT_MAX_BUFFERED_EVENTS = 10_000;
export const DEFAULT_STREAM_NAME = 'QMPX_EVENTS';
/** One day of events... */
export const DEFAULT_STREAM_MAX_AGE_SECONDS = 24 * 60 * 60;
/** ...or 1 GiB of them, whichever is reached first; the oldest go first. */
export const DEFAULT_STREAM_MAX_BYTES = 1024 * 1024 * 1024;
/** How long JetStream remembers a message id, so a republished event is stored once. */
export const DEFAULT_DUPLICATE_WINDOW_SECONDS = 120;
export const DEFAULT_RUN_STATE_BUCKET = 'qmpx-run-state';

export interface NatsTlsConfig {
  ca?: string;
  cert?: string;
  key?: string;
}

export interface EventStreamConfig {
  stream: string;
  maxAgeSeconds: number;
  maxBytes: number;
  duplicateWindowSeconds: number;
}

export interface NatsConfig {
  servers: string[];
  /** The host token of every subject; default os.hostname(). */
  host: string;
  /** A NATS credentials file (JWT and nkey seed). */
  credentials?: string;
  user?: string;
  password?: string;
  token?: string;
  tls?: NatsTlsConfig;
  /** Events go into a JetStream stream, published with acknowledgements; absent: plain publishes. */
  jetStream?: EventStreamConfig;
  /** The key-value bucket of run states; absent: none kept. */
  runStateBucket?: string;
  maxBufferedEvents: number;
}

/** The `nats` key as written in a config file. */
export interface NatsConfigFile {
  servers: string | string[];
  host?: string;
  credentials?: string;
  user?: string;
  password?: string;
  token?: string;
  tls?: NatsTlsConfig;
  jetStream?: boolean | Partial<EventStreamConfig>;
  runState?: boolean | string;
  maxBufferedEvents?: number;
}

const pathSchema = { type: 'string', minLength: 1 };

/** The JSON schema of the config file's `nats` key (lib/proxy/config.ts embeds it). */
export const natsConfigSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['servers'],
  properties: {
    servers: { anyOf: [{ type: 'string', minLength: 1 }, { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } }] },
    host: { type: 'string', minLength: 1 },
    credentials: pathSchema,
    user: { type: 'string', minLength: 1 },
    password: { type: 'string' },
    token: { type: 'string', minLength: 1 },
    tls: {
      type: 'object',
      additionalProperties: false,
      properties: { ca: pathSchema, cert: pathSchema, key: pathSchema },
    },
    jetStream: {
      anyOf: [
        { type: 'boolean' },
        {
          type: 'object',
          additionalProperties: false,
          properties: {
            stream: { type: 'string', pattern: '^[A-Za-z0-9_-]+$' },
            maxAgeSeconds: { type: 'integer', minimum: 1 },
            maxBytes: { type: 'integer', minimum: 1024 },
            duplicateWindowSeconds: { type: 'integer', minimum: 1 },
          },
        },
      ],
    },
    runState: { anyOf: [{ type: 'boolean' }, { type: 'string', pattern: '^[A-Za-z0-9_-]+$' }] },
    maxBufferedEvents: { type: 'integer', minimum: 1 },
  },
} as const;

/** The stream settings with every default filled in. */
export function eventStreamConfig(given: Partial<EventStreamConfig> = {}): EventStreamConfig {
  return {
    stream: given.stream ?? DEFAULT_STREAM_NAME,
    maxAgeSeconds: given.maxAgeSeconds ?? DEFAULT_STREAM_MAX_AGE_SECONDS,
    maxBytes: given.maxBytes ?? DEFAULT_STREAM_MAX_BYTES,
    duplicateWindowSeconds: given.duplicateWindowSeconds ?? DEFAULT_DUPLICATE_WINDOW_SECONDS,
  };
}

/**
 * A validated `nats` key (the schema has been checked) with defaults filled
 * in. The run-state bucket follows JetStream unless `runState` says
 * otherwise: both need JetStream on the server. Throws QmpxError on
 * contradictions.
 */
export function natsConfigFromFile(value: NatsConfigFile, source: string): NatsConfig {
  const config = natsConfigFromServers(typeof value.servers === 'string' ? value.servers : value.servers.join(','), source);
  if (value.host !== undefined) config.host = value.host;
  for (const key of ['credentials', 'user', 'password', 'token'] as const) if (value[key] !== undefined) config[key] = value[key];
  if (value.tls !== undefined) config.tls = value.tls;
  if (value.jetStream !== undefined && value.jetStream !== false) config.jetStream = eventStreamConfig(value.jetStream === true ? {} : value.jetStream);
  const runState = value.runState ?? config.jetStream !== undefined;
  if (runState !== false) config.runStateBucket = runState === true ? DEFAULT_RUN_STATE_BUCKET : runState;
  if (value.maxBufferedEvents !== undefined) config.maxBufferedEvents = value.maxBufferedEvents;
  checkNatsConfig(config, source);
  return config;
}

/**
 * `--nats URL[,URL...]`: the servers, with credentials taken out of the
 * first URL that has any (`nats://USER:PASSWORD@host`, `nats://TOKEN@host`;
 * percent-encoded), since the client library does not read them there.
 */
export function natsConfigFromServers(urls: string, source: string): NatsConfig {
  const config: NatsConfig = { servers: [], host: hostname(), maxBufferedEvents: DEFAULT_MAX_BUFFERED_EVENTS };
  for (const text of urls.split(',').map((url) => url.trim()).filter((url) => url !== '')) {
    let url: URL;
    try {
      url = new URL(text.includes('://') ? text : `nats://${text}`);
    } catch {
      throw new QmpxError(`${source}: NATS server ${JSON.stringify(text)} is not a URL (nats://HOST:PORT)`);
    }
    if (!['nats:', 'tls:'].includes(url.protocol)) throw new QmpxError(`${source}: NATS server ${JSON.stringify(text)}: expected nats:// or tls://`);
    if (url.username !== '' && config.user === undefined && config.token === undefined) {
      if (url.password !== '') {
        config.user = decodeURIComponent(url.username);
        config.password = decodeURIComponent(url.password);
      } else {
        config.token = decodeURIComponent(url.username);
      }
    }
    if (url.protocol === 'tls:') config.tls ??= {};
    config.servers.push(`${url.protocol}//${url.host}`);
  }
  if (config.servers.length === 0) throw new QmpxError(`${source}: no NATS server given`);
  return config;
}

/** One way of authenticating, and a host name that can be a subject token. Throws QmpxError. */
export function checkNatsConfig(config: NatsConfig, source: string): void {
  const ways = [config.credentials !== undefined, config.user !== undefined, config.token !== undefined].filter(Boolean).length;
  if (ways > 1) throw new QmpxError(`${source}: nats: give one of credentials, user/password and token`);
  if ((config.password !== undefined) !== (config.user !== undefined)) throw new QmpxError(`${source}: nats: user and password go together`);
  if (config.host === '') throw new QmpxError(`${source}: nats: the host name is empty`);
}
