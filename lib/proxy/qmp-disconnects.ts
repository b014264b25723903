/**
 * Why a downstream QMP client is disconnected by qmpx rather than by its
 * own choice: each reason gets one warning with the numbers that decided it,
 * and is counted (slow consumers apart from policy), so an operator can tell
 * a misbehaving client from a broken one.
 */
import type { SessionContext } from './session.js';

function who(context: SessionContext, client: number): { monitor: string; socket: string; client: number } {
  return { monitor: context.monitorName(), socket: context.endpoint, client };
}

/** More than maxBufferedBytes waited for a client that does not read its replies and events. */
export function reportSlowConsumer(context: SessionContext, client: number, bufferedBytes: number): void {
  context.logger.warn({ ...who(context, client), bufferedBytes, limit: context.maxBufferedBytes }, 'client is not reading; disconnected (outbound buffer full)');
  context.observer?.slowConsumerDisconnected();
}

/** One message longer than maxMessageBytes. */
export function reportOversizedMessage(context: SessionContext, client: number, bytes: number, limit: number): void {
  context.logger.warn({ ...who(context, client), bytes, limit }, 'client sent an oversized message; disconnected');
  context.observer?.policyDisconnected('oversized message');
}

/** The process-wide pool for unfinished input is spent and this client holds more of it. */
export function reportInputBudgetSpent(context: SessionContext, client: number, heldBytes: number): void {
  context.logger.warn(
    { ...who(context, client), heldBytes, limit: context.inputBudget?.limitBytes },
    'memory for unfinished client input is spent; the client holding more disconnected',
  );
  context.observer?.policyDisconnected('input memory spent');
}

/** A greeted client that did not send qmp_capabilities within `timeoutMs`. */
export function reportNegotiationTimeout(context: SessionContext, client: number, timeoutMs: number): void {
  context.logger.warn({ ...who(context, client), timeoutMs }, 'client did not negotiate capabilities in time; disconnected');
  context.observer?.policyDisconnected('no capabilities negotiated in time');
}
