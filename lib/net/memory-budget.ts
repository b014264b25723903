/**
 * A process-wide bound on the bytes held for clients' unfinished input
 * (partial QMP messages, partial libvirt frames), shared by every socket
 * of every monitor. Each holder gets a small allowance of its own that is
 * never charged, so a client sending ordinary messages is never refused
 * however many hostile clients hold the shared part; only growth past the
 * allowance draws from the shared pool, and a holder that cannot grow is
 * disconnected by its owner (the pool is not waited for: waiting would let
 * clients that never finish a message stall everyone else).
 */

/** Shared pool for unfinished client input, over all connections of the process. */
export const DEFAULT_MAX_HELD_INPUT_BYTES = 128 * 1024 * 1024;
/** What each connection may hold for an unfinished message without drawing on the pool. */
export const DEFAULT_FREE_HELD_INPUT_BYTES = 64 * 1024;

export class MemoryBudget {
  private usedBytes = 0;

  constructor(
    readonly limitBytes = DEFAULT_MAX_HELD_INPUT_BYTES,
    readonly freePerHolderBytes = DEFAULT_FREE_HELD_INPUT_BYTES,
  ) {}

  /** Bytes of the shared pool in use now. */
  get used(): number {
    return this.usedBytes;
  }

  /**
   * A holder's storage goes from `previousBytes` to `nextBytes`. Returns
   * false, changing nothing, when that growth would pass the limit;
   * shrinking always succeeds.
   */
  resize(previousBytes: number, nextBytes: number): boolean {
    const before = Math.max(0, previousBytes - this.freePerHolderBytes);
    const after = Math.max(0, nextBytes - this.freePerHolderBytes);
    if (after > before && this.usedBytes + after - before > this.limitBytes) return false;
    this.usedBytes += after - before;
    return true;
  }
}
