/**
 * Which host serves a VM, when a client names only the VM: the run-state
 * bucket every `qmpx serve --nats` keeps holds one key per VM it serves,
 * `<host>.<vm>` (lib/nats/subjects.ts runStateKey), so the keys matching
 * `*.<vm>` name its hosts. Exactly one host must have it; a name on two hosts is ambiguous
 * and the client must say which.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { QmpxError } from '../errors.js';
import { NoResponderError } from './remote-errors.js';
import { DEFAULT_RUN_STATE_BUCKET } from './config.js';
import { parseRunStateKey, runStateKey } from './subjects.js';

/** The host serving `vm`. Rejects with NoResponderError (no host has it) or QmpxError (several do, or the bucket cannot be read). */
export async function resolveHost(connection: NatsConnection, vm: string, timeoutMs: number, bucketName = DEFAULT_RUN_STATE_BUCKET): Promise<string> {
  const [{ Kvm }, { jetstream }] = await Promise.all([import('@nats-io/kv'), import('@nats-io/jetstream')]);
  const hosts: string[] = [];
  // The key of (host '*', vm) is '*.<vm>' only while '*' is kept as is: encodeToken writes it %2A.
  const pattern = `*.${runStateKey('h', vm).slice(2)}`;
  try {
    const bucket = await new Kvm(jetstream(connection, { timeout: timeoutMs })).open(bucketName);
    for await (const key of await bucket.keys(pattern)) {
      const parsed = parseRunStateKey(key);
      if (parsed !== null && parsed.vm === vm) hosts.push(parsed.host);
    }
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new QmpxError(`cannot look up which host serves VM '${vm}' in the ${bucketName} bucket (${reason}); name it: nats://SERVER/HOST/VM`, { cause: error });
  }
  if (hosts.length === 0) throw new NoResponderError(`keys ${pattern} of ${bucketName}`, vm);
  if (hosts.length > 1) throw new QmpxError(`VM '${vm}' is served on several hosts (${hosts.join(', ')}); name one: nats://SERVER/HOST/VM`);
  return hosts[0]!;
}
