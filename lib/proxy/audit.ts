/**
 * The audit log: one NDJSON line per downstream command, appended to a file.
 *
 *   {"time":"2026-01-02T03:04:05.678Z","monitor":"vm1","socket":"/run/qmpx/vm1.qmp",
 *    "client":3,"command":"stop","outcome":"ok"}
 *
 * `outcome` is `ok`, `error` (with `errorClass`), `denied` (the socket's
 * policy refused it), `lost` (the upstream went away first) or `dropped`
 * (the client left before the reply). Arguments are recorded only when
 * asked for (`arguments: true`), since they can hold passwords and keys;
 * they are written as the client sent them, number tokens exact.
 *
 * Lines are written in order through one append stream. If the file cannot
 * be written the failure is logged once and auditing stops; the proxy keeps
 * serving.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import type { Logger } from '../log.js';

export type AuditOutcome = 'ok' | 'error' | 'denied' | 'lost' | 'dropped';

export interface AuditRecord {
  monitor: string;
  socket: string;
  client: number;
  command: string;
  outcome: AuditOutcome;
  errorClass?: string;
  /** Already-serialised JSON; written only when the log records arguments. */
  argumentsJson?: string;
}

/** Where sessions report what they ran. */
export interface AuditSink {
  readonly recordsArguments: boolean;
  record(entry: AuditRecord): void;
  close(): Promise<void>;
}

/** An audit sink that records nothing. */
export const noAudit: AuditSink = {
  recordsArguments: false,
  record: () => undefined,
  close: async () => undefined,
};

/** Opens (appending to) an NDJSON audit file. Open errors are logged, not thrown. */
export function openAuditLog(path: string, recordsArguments: boolean, logger: Logger): AuditSink {
  const stream: WriteStream = createWriteStream(path, { flags: 'a', mode: 0o600 });
  let failed = false;
  stream.on('error', (error) => {
    if (!failed) logger.error({ audit: path, err: error.message }, 'audit log cannot be written; auditing stopped');
    failed = true;
  });
  return {
    recordsArguments,
    record(entry: AuditRecord): void {
      if (failed) return;
      let line = `{"time":${JSON.stringify(new Date().toISOString())},"monitor":${JSON.stringify(entry.monitor)},"socket":${JSON.stringify(entry.socket)},"client":${entry.client},"command":${JSON.stringify(entry.command)},"outcome":"${entry.outcome}"`;
      if (entry.errorClass !== undefined) line += `,"errorClass":${JSON.stringify(entry.errorClass)}`;
      if (recordsArguments && entry.argumentsJson !== undefined) line += `,"arguments":${entry.argumentsJson}`;
      stream.write(`${line}}\n`);
    },
    close(): Promise<void> {
      return new Promise((resolve) => {
        if (failed || stream.destroyed) resolve();
        else stream.end(() => resolve());
      });
    },
  };
}
