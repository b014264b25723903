/**
 * One request-reply to a VM's serve over NATS: the subject of its class,
 * the body, and what each way of failing means for the VM.
 *
 *   reply                           QEMU's reply text (or qmpx's refusal, in QMP's error shape),
 *                                   or the HMP output; Qmpx-Error names qmpx's own answers
 *                                   (lib/nats/command-responder.ts), and of those:
 *     outcome-unknown               OutcomeUnknownError: the serve sent it to QEMU, no reply came
 *     monitor-down                  ConnectionClosedError: the VM's monitor is not connected; nothing ran
 *   no responder                    NoResponderError: nothing serves that VM; nothing ran
 *   permission violation            PermissionDeniedError: the NATS server refused to carry it; nothing ran
 *   no reply before the deadline    OutcomeUnknownError: QEMU may or may not have run it
 *   connection gone                 ConnectionClosedError
 */
import type { MsgHdrs, NatsConnection } from '@nats-io/transport-node';
import { AbortError, ConnectionClosedError } from '../errors.js';
import { NoResponderError, OutcomeUnknownError, PermissionDeniedError } from './remote-errors.js';
import { subjectFor } from './subjects.js';

type NatsModule = typeof import('@nats-io/transport-node');

// The serve's names (lib/nats/command-responder.ts), repeated here because that module loads the
// NATS client at import and this one must not; spec/nats/client-request.spec.ts holds them equal.
/** The header of qmpx's own answers: its value is the code. */
export const ERROR_HEADER = 'Qmpx-Error';
/** The header that marks the body as an HMP line (`hmp`) rather than a QMP command object (`qmp`). */
export const FORMAT_HEADER = 'Qmpx-Format';
/** The subject's command for an HMP line. */
export const HMP_COMMAND = 'human-monitor-command';


/** How long a request waits for its reply when the caller sets no deadline. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** A VM as the subjects name it. */
export interface VmAddress {
  host: string;
  vm: string;
}

export interface RemoteRequest {
  /** `cmd`: the full policy; `ro`: the read-only policy. */
  kind: 'cmd' | 'ro';
  /** The command name, the subject's last token (human-monitor-command for an HMP line). */
  command: string;
  /** A QMP command object, or an HMP line when `hmp`. */
  body: string;
  hmp?: boolean;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** A reply: its body, and the code of qmpx's own answer (refused, mismatch, ...) when it is one. */
export interface RemoteReply {
  body: string;
  errorCode?: string;
}

/** Sends the request and resolves with the reply. Rejects as the table above says. */
export async function requestReply(connection: NatsConnection, address: VmAddress, request: RemoteRequest): Promise<RemoteReply> {
  const subject = subjectFor(address.host, address.vm, request.kind, request.hmp ? HMP_COMMAND : request.command);
  const timeoutMs = request.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  if (request.signal?.aborted) throw new AbortError(request.command);
  const nats = await import('@nats-io/transport-node');
  let headers: MsgHdrs | undefined;
  if (request.hmp) {
    headers = nats.headers();
    headers.set(FORMAT_HEADER, 'hmp');
  }
  const sent = connection.request(subject, request.body, { timeout: timeoutMs, ...(headers === undefined ? {} : { headers }) });
  const reply = await (request.signal === undefined ? sent : raceAbort(sent, request.signal, request.command)).catch((error: unknown) => {
    throw requestFailure(nats, error, subject, address, request.command, timeoutMs);
  });
  const body = reply.string();
  const errorCode = reply.headers?.get(ERROR_HEADER) || undefined;
  if (errorCode === 'outcome-unknown') throw new OutcomeUnknownError(subject, timeoutMs, request.command, errorDesc(body));
  if (errorCode === 'monitor-down') throw new ConnectionClosedError(`${request.command}: ${errorDesc(body) ?? 'the monitor is not connected'}`);
  return errorCode === undefined ? { body } : { body, errorCode };
}

/** The `desc` of an error reply body, when it reads as one. */
function errorDesc(body: string): string | undefined {
  try {
    const desc: unknown = (JSON.parse(body) as { error?: { desc?: unknown } }).error?.desc;
    return typeof desc === 'string' ? desc : undefined;
  } catch {
    return undefined;
  }
}

/** Aborting gives up waiting; like a timeout, the request may already have run. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal, command: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new AbortError(command, { cause: signal.reason }));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** The NATS client's error as what it means for the VM. */
function requestFailure(nats: NatsModule, error: unknown, subject: string, address: VmAddress, command: string, timeoutMs: number): Error {
  if (error instanceof AbortError) return error;
  for (const reason of [error, error instanceof Error ? error.cause : undefined]) {
    if (reason instanceof nats.NoRespondersError) return new NoResponderError(subject, address.vm, address.host);
    if (reason instanceof nats.PermissionViolationError) return new PermissionDeniedError(subject, reason.message);
    if (reason instanceof nats.TimeoutError) return new OutcomeUnknownError(subject, timeoutMs, command);
    if (reason instanceof nats.ClosedConnectionError || reason instanceof nats.DrainingConnectionError) {
      return new ConnectionClosedError(`${command}: the NATS connection closed before the reply: outcome unknown`, { cause: error });
    }
  }
  return error instanceof Error ? error : new Error(String(error));
}
