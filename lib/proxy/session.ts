/**
 * What every downstream session has: an id, the socket it came on, its
 * policy, logs and audit, and a life that ends exactly once.
 */
import { setMaxListeners } from 'node:events';
import type { Socket } from 'node:net';
import type { Logger } from '../log.js';
import type { RequestOrigin } from '../request.js';
import { StateMachine, type Transitions } from '../state.js';
import type { AuditSink } from './audit.js';
import type { InputPacer } from './input-pacer.js';
import type { MemoryBudget } from '../net/memory-budget.js';
import type { SessionObserver } from './observer.js';
import type { Policy } from './policy.js';
import type { UpstreamLink } from './upstream.js';

/**
 * Commands one client may have pending: upstream, or answered and waiting
 * behind an earlier one (HMP: lines running or waiting). Past it its input
 * is paused (fairness, bounded memory); it also bounds what a client that
 * stops reading can still be owed.
 */
export const DEFAULT_MAX_PENDING_PER_CLIENT = 32;

/** Shared by the sessions of one endpoint. */
export interface SessionContext {
  /** The downstream socket path, for logs and audit. */
  readonly endpoint: string;
  readonly policy: Policy;
  readonly logger: Logger;
  readonly audit: AuditSink;
  /** The VM's name as currently known. */
  monitorName(): string;
  readonly maxBufferedBytes: number;
  readonly maxPendingCommands: number;
  /** Largest single message a client may send before it is disconnected. */
  readonly maxMessageBytes?: number;
  /** Process-wide pool for unfinished client input (shared by every socket and monitor). */
  readonly inputBudget?: MemoryBudget;
  /** How long a greeted QMP client may take to negotiate; default DEFAULT_NEGOTIATION_TIMEOUT_MS. */
  readonly negotiationTimeoutMs?: number;
  /** Process-wide fair turns for bulk input; everything is lexed on arrival when absent. */
  readonly inputPacer?: InputPacer;
  /** Told of every settled command (serve --metrics); absent when nothing observes. */
  readonly observer?: SessionObserver;
}

/** The surface the proxy drives every session through. */
export interface DownstreamSession {
  readonly id: number;
  /** What the client speaks: a QMP session needs an upstream that speaks QMP. */
  readonly protocol: 'qmp' | 'hmp';
  readonly socket: Socket;
  /** The link the session was greeted on; undefined while it waits for the upstream. */
  readonly link: UpstreamLink | undefined;
  /** Greets the client on `link` and starts reading its input. */
  greet(link: UpstreamLink): void;
  /** One event line (with its CRLF) in upstream wire order; ignored unless the client may see events. */
  deliverEvent(line: string): void;
  /** The link went away: answer what is pending, then close like QEMU's exit would. */
  upstreamLost(): void;
  /** Stops reading new input (shutdown); what was read is still answered. */
  stopReading(): void;
  /** Commands received and not yet answered. */
  readonly pendingCount: number;
  /** Ends the session now. */
  destroy(): void;
  /** Settles once the client's connection has closed. */
  readonly closed: Promise<void>;
}

/**
 * The run state of one downstream session (`kind`: 'QMP' or 'HMP'), its
 * changes logged at debug level with the endpoint and the client's id.
 */
export function sessionStateMachine<State extends string>(
  kind: string,
  initial: State,
  transitions: Transitions<State>,
  context: SessionContext,
  session: number,
): StateMachine<State> {
  return new StateMachine(initial, transitions, context.logger, { socket: context.endpoint, client: session }, `${kind} session state`);
}

let nextSessionId = 1;

/** Session ids are unique within the process, so logs of several endpoints never collide. */
export function allocateSessionId(): number {
  return nextSessionId++;
}

/** The request origin recorded for a downstream session's commands (docs/design.md invariant 1). */
export function downstreamOrigin(session: number, endpoint: string): RequestOrigin {
  return { kind: 'downstream', session, endpoint };
}

/**
 * An AbortController whose signal every request of one session listens to
 * (up to maxPendingCommands at once): Node's leak warning at 10 listeners
 * does not apply.
 */
export function abortControllerForMany(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}

/**
 * Resolves once every session's socket has handed its last bytes to the
 * kernel (or closed), or after `timeoutMs`: a client that does not read
 * cannot hold up the shutdown.
 */
export async function answersWritten(sessions: readonly DownstreamSession[], timeoutMs: number): Promise<void> {
  const writing = sessions.map((session) => session.socket).filter((socket) => !socket.destroyed && !socket.writableFinished);
  if (writing.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(writing.map((socket) => new Promise<void>((resolve) => {
      socket.once('finish', resolve);
      socket.once('close', resolve);
    }))),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
  ]);
  clearTimeout(timer);
}
