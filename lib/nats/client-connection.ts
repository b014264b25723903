/**
 * Where a fleet client connects: a `nats://` (or `tls://`) URL naming the
 * NATS server, with optional user:password and an optional path naming the
 * VM (`/VM` or `/HOST/VM`), and the credentials and TLS options the NATS
 * client takes.
 *
 *   nats://alice:secret@nats.example:4222/web-1        VM web-1, on whichever host serves it
 *   nats://nats.example/host-a/web-1                   VM web-1 of host-a
 *   tls://nats.example                                 no VM: the fleet (qmpx events)
 *
 * Path segments are percent-decoded, so a VM named `a/b` is written `a%2Fb`.
 * The NATS client is loaded only when a connection is opened, so importing
 * 'qmpx' never loads it.
 */
import { readFile } from 'node:fs/promises';
import type { NatsConnection } from '@nats-io/transport-node';
import { InvalidArgumentError, QmpxError } from '../errors.js';

/** A parsed fleet URL. */
export interface NatsTarget {
  /** The server as the NATS client takes it, without credentials: `nats://HOST:PORT` or `tls://HOST:PORT`. */
  server: string;
  user?: string;
  pass?: string;
  /** The host name the VM's serve publishes under, when the URL gives one. */
  host?: string;
  /** The VM, when the URL names one. */
  vm?: string;
}

/** How to authenticate to NATS and trust its TLS certificate, beyond the URL's user:password. */
export interface NatsCredentials {
  /** A `.creds` file (JWT and NKey seed), as `nats-server` operators hand out. */
  credsFile?: string;
  /** A token (`authorization { token: ... }` on the server). */
  token?: string;
  /** User and password; the URL's, when it has them, win. */
  user?: string;
  pass?: string;
  /** A PEM file of the CA that signed the server's certificate; turns TLS on. */
  tlsCaFile?: string;
  /** Client certificate and key (PEM files), for servers that verify clients. */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  /** A name for this connection in the server's monitoring (connz). */
  name?: string;
  /** How often to try again after losing the server; -1: forever. Default 10 (every 2 s). */
  maxReconnectAttempts?: number;
}

const DEFAULT_PORT = 4222;

/** True for the URLs the fleet client takes: `nats://` and `tls://`. */
export function isNatsUrl(text: string): boolean {
  return /^(nats|tls):\/\//i.test(text);
}

/** Parses `nats://[USER[:PASS]@]HOST[:PORT][/VM | /HOST/VM]`. Throws InvalidArgumentError. */
export function parseNatsTarget(text: string): NatsTarget {
  if (!isNatsUrl(text)) throw new InvalidArgumentError(`not a NATS URL (nats://HOST[:PORT][/VM]): ${JSON.stringify(text)}`);
  let url: URL;
  try {
    url = new URL(text);
  } catch (error) {
    throw new InvalidArgumentError(`not a NATS URL: ${JSON.stringify(text)}`, undefined, { cause: error });
  }
  if (url.hostname === '') throw new InvalidArgumentError(`a NATS URL needs a host: ${JSON.stringify(text)}`);
  if (url.search !== '' || url.hash !== '') throw new InvalidArgumentError(`a NATS URL takes no query or fragment: ${JSON.stringify(text)}`);
  const scheme = url.protocol.toLowerCase().replace(/:$/, '');
  const target: NatsTarget = { server: `${scheme}://${url.hostname}:${url.port === '' ? DEFAULT_PORT : url.port}` };
  if (url.username !== '') target.user = decodeURIComponent(url.username);
  if (url.password !== '') target.pass = decodeURIComponent(url.password);
  const segments = url.pathname.split('/').filter((segment) => segment !== '');
  if (segments.length > 2) throw new InvalidArgumentError(`a NATS URL names at most HOST/VM after the server: ${JSON.stringify(text)}`);
  const names = segments.map((segment) => {
    try {
      return decodeURIComponent(segment);
    } catch (error) {
      throw new InvalidArgumentError(`bad percent-encoding in ${JSON.stringify(segment)}`, undefined, { cause: error });
    }
  });
  if (names.length === 2) [target.host, target.vm] = names;
  else if (names.length === 1) target.vm = names[0];
  return target;
}

/** The URL without its password, for messages and labels. */
export function describeTarget(target: NatsTarget): string {
  const who = target.user === undefined ? '' : `${target.user}@`;
  const path = [target.host, target.vm].filter((name) => name !== undefined).map((name) => encodeURIComponent(name!));
  return `${target.server.replace('://', `://${who}`)}${path.length === 0 ? '' : `/${path.join('/')}`}`;
}

/**
 * Opens a NATS connection to the target's server. Reconnecting after a lost
 * connection is the NATS client's (its defaults: every 2 s, 10 attempts).
 * Throws QmpxError naming the server when it cannot connect or authenticate.
 */
export async function openNatsConnection(target: NatsTarget, credentials: NatsCredentials = {}): Promise<NatsConnection> {
  const { connect, credsAuthenticator } = await import('@nats-io/transport-node');
  const user = target.user ?? credentials.user;
  const pass = target.pass ?? credentials.pass;
  const tlsWanted = target.server.startsWith('tls://') || credentials.tlsCaFile !== undefined || credentials.tlsCertFile !== undefined;
  const server = target.server.replace(/^tls:\/\//, 'nats://');
  try {
    return await connect({
      servers: server,
      name: credentials.name ?? 'qmpx',
      ...(credentials.maxReconnectAttempts === undefined ? {} : { maxReconnectAttempts: credentials.maxReconnectAttempts }),
      ...(user === undefined ? {} : { user, ...(pass === undefined ? {} : { pass }) }),
      ...(credentials.token === undefined ? {} : { token: credentials.token }),
      ...(credentials.credsFile === undefined ? {} : { authenticator: credsAuthenticator(await readFile(credentials.credsFile)) }),
      ...(tlsWanted
        ? {
            tls: {
              ...(credentials.tlsCaFile === undefined ? {} : { caFile: credentials.tlsCaFile }),
              ...(credentials.tlsCertFile === undefined ? {} : { certFile: credentials.tlsCertFile }),
              ...(credentials.tlsKeyFile === undefined ? {} : { keyFile: credentials.tlsKeyFile }),
            },
          }
        : {}),
    });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new QmpxError(`cannot connect to NATS at ${describeTarget({ ...target, host: undefined, vm: undefined })}: ${reason}`, { cause: error });
  }
}
