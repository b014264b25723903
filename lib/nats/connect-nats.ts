/**
 * connectNats() as the package exports it: the rest of lib/nats (and the
 * NATS client under it) loads on the first call, so `import('qmpx')` costs
 * nothing more for programs that never reach the fleet.
 */
import type { Monitor } from '../contract.js';
import type { NatsMonitorOptions } from './remote-monitor.js';

export type { NatsMonitorOptions } from './remote-monitor.js';

/**
 * Connects to a VM's monitor over NATS: `nats://[USER:PASS@]SERVER[:PORT]/VM`
 * or `.../HOST/VM` (lib/nats/remote-monitor.ts says what it rejects with).
 */
export async function connectNats(url: string, options: NatsMonitorOptions = {}): Promise<Monitor> {
  const remote = await import('./remote-monitor.js');
  return remote.connectNats(url, options);
}
