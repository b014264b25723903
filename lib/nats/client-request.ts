/**
 * One request-reply to a VM's serve over NATS: the subject of its class,
 * the body, and what each way of failing means for the VM.
 *
 *   reply                           QEMU's reply text (or qmpx's refusal, in QMP's error shape)
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

/** The header that marks a body as a human-monitor command line rather than a QMP command object. */
export const HMP_HEADER = 'Qmpx-Hmp';

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
  /** The command name (for HMP: the line's first word), the subject's last token. */
  command: string;
  /** A QMP command object, or an HMP line when `hmp`. */
  body: string;
  hmp?: boolean;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Sends the request and resolves with the reply body. Rejects as the table above says. */
export async function requestReply(connection: NatsConnection, address: VmAddress, request: RemoteRequest): Promise<string> {
  const subject = subjectFor(address.host, address.vm, request.kind, request.command);
  const timeoutMs = request.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  if (request.signal?.aborted) throw new AbortError(request.command);
  const nats = await import('@nats-io/transport-node');
  let headers: MsgHdrs | undefined;
  if (request.hmp) {
    headers = nats.headers();
    headers.set(HMP_HEADER, '1');
  }
  const sent = connection.request(subject, request.body, { timeout: timeoutMs, ...(headers === undefined ? {} : { headers }) });
  const reply = await (request.signal === undefined ? sent : raceAbort(sent, request.signal, request.command)).catch((error: unknown) => {
    throw requestFailure(nats, error, subject, address, request.command, timeoutMs);
  });
  return reply.string();
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
    if (reason instanceof nats.NoRespondersError) return new NoResponderError(subject, address.host, address.vm);
    if (reason instanceof nats.PermissionViolationError) return new PermissionDeniedError(subject, reason.message);
    if (reason instanceof nats.TimeoutError) return new OutcomeUnknownError(subject, timeoutMs, command);
    if (reason instanceof nats.ClosedConnectionError || reason instanceof nats.DrainingConnectionError) {
      return new ConnectionClosedError(`${command}: the NATS connection closed before the reply: outcome unknown`, { cause: error });
    }
  }
  return error instanceof Error ? error : new Error(String(error));
}
