/**
 * serve's logger: pino, on stderr, one line per record. JSON lines for
 * journald and log shippers; on a terminal, pino-pretty's readable lines
 * (time, level name, message, fields). `auto` picks by whether stderr is a
 * terminal. pino-pretty is loaded only when used. Also the lines every
 * socket kind logs as clients come and go (logClientConnected).
 */
import { pino, type Logger as PinoLogger } from 'pino';
import type { Logger } from '../log.js';
import type { ServeLogLevel } from './config.js';

export type LogFormat = 'pretty' | 'json';
export const LOG_FORMATS = ['auto', 'pretty', 'json'] as const;

/** The format `auto` stands for here: pretty when stderr is a terminal. */
export function resolveLogFormat(format: LogFormat | 'auto' | undefined, stderrIsTerminal = process.stderr.isTTY === true): LogFormat {
  if (format === 'pretty' || format === 'json') return format;
  return stderrIsTerminal ? 'pretty' : 'json';
}

export async function createServeLogger(level: ServeLogLevel, format: LogFormat): Promise<PinoLogger> {
  const options = { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  if (format === 'json') return pino(options, pino.destination({ dest: 2, sync: true }));
  const { default: pretty } = await import('pino-pretty');
  // Synchronous, as the JSON destination is: the last lines before an exit are not lost.
  const stream = pretty({ destination: 2, sync: true, colorize: process.stderr.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true });
  return pino(options, stream);
}

/** Who is at the other end of a UNIX socket connection (SO_PEERCRED), where the listener could ask. */
export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/** The socket kinds a client connects on. */
export type ClientSocketKind = 'qmp' | 'hmp' | 'read-only' | 'libvirt' | 'libvirt-read-only';

/**
 * Logs a client's connection at info level (monitor, socket kind and path,
 * client id, peer credentials when known), and returns what logs its end:
 * why, and how long it stayed.
 */
export function logClientConnected(
  logger: Logger,
  client: { monitor?: string; kind: ClientSocketKind; socket: string; client: number; peer?: PeerCredentials | undefined },
): (reason: string, detail?: string) => void {
  const connectedAt = Date.now();
  const fields = client.peer === undefined ? { ...client } : { ...client, peer: { ...client.peer } };
  if (fields.peer === undefined) delete fields.peer;
  logger.info(fields, `client connected on ${client.kind} socket ${client.socket}${client.peer === undefined ? '' : ` (pid ${client.peer.pid}, uid ${client.peer.uid})`}`);
  return (reason, detail) => {
    const connectedForMs = Date.now() - connectedAt;
    const why = detail === undefined ? reason : `${reason}: ${detail}`;
    logger.info({ ...fields, reason, ...(detail === undefined ? {} : { detail }), connectedForMs }, `client disconnected (${why}) after ${(connectedForMs / 1000).toFixed(1)} s`);
  };
}
