/**
 * Which host serves a VM, when a client names only the VM: the run-state
 * bucket every `qmpx serve --nats` keeps holds one key per VM it serves,
 * `<host>.<vm>` in subject tokens, so the keys matching `*.<vm>` name its
 * hosts. Exactly one host must have it; a name on two hosts is ambiguous
 * and the client must say which.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { QmpxError } from '../errors.js';
import { NoResponderError } from './remote-errors.js';
import { decodeToken, encodeToken } from './subjects.js';

/** The key-value bucket of run states the serves keep. */
export const RUN_STATE_BUCKET = 'qmpx-run-state';

/** The host serving `vm`. Rejects with NoResponderError (no host has it) or QmpxError (several do, or the bucket cannot be read). */
export async function resolveHost(connection: NatsConnection, vm: string, timeoutMs: number): Promise<string> {
  const [{ Kvm }, { jetstream }] = await Promise.all([import('@nats-io/kv'), import('@nats-io/jetstream')]);
  const hosts: string[] = [];
  try {
    const bucket = await new Kvm(jetstream(connection, { timeout: timeoutMs })).open(RUN_STATE_BUCKET);
    for await (const key of await bucket.keys(`*.${encodeToken(vm)}`)) hosts.push(decodeToken(key.split('.')[0]!));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new QmpxError(`cannot look up which host serves VM '${vm}' in the ${RUN_STATE_BUCKET} bucket (${reason}); name it: nats://SERVER/HOST/VM`, { cause: error });
  }
  if (hosts.length === 0) throw new NoResponderError(`*.${encodeToken(vm)}`, '*', vm);
  if (hosts.length > 1) throw new QmpxError(`VM '${vm}' is served on several hosts (${hosts.join(', ')}); name one: nats://SERVER/HOST/VM`);
  return hosts[0]!;
}
