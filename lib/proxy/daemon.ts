/**
 * The `qmpx serve` process: every configured monitor, logging, signals.
 */
import { QmpxError } from '../errors.js';
import type { ServeConfig } from './config.js';

/** Runs the proxy until a signal or (with --launch) QEMU's exit; resolves with the exit status. */
export async function runServe(config: ServeConfig): Promise<number> {
  throw new QmpxError(`serve is not available yet (${config.monitors.length} monitor(s) configured)`);
}
