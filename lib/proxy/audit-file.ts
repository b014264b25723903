/**
 * The audit file's writer: lines appended in order, one write at a time,
 * and a file that fails to take them is retried rather than given up on.
 *
 *   opening ──opened──▶ open ──write fails──▶ failing ──reopened, gap line written──▶ open
 *      │                 │                      │  ▲
 *      │                 │                      └──┘ reopen fails: next try after a backoff
 *      └─────────────────┴──────────── close() ─┴──────────────────────────────────▶ closed
 *      ▲                 │
 *      └── reopenPath() ─┘  (after the batch being written; SIGHUP for logrotate)
 *
 * - Lines wait in a queue bounded by `maxQueuedBytes`; a line that does not
 *   fit is counted as lost, never kept. While the file fails, the queue
 *   keeps what it holds and the count grows.
 * - Each retry opens the path again (a full disk that got space back, a
 *   file replaced or re-created), so nothing depends on the old descriptor.
 * - The first failure of an episode is logged (error); the return is logged
 *   (warn) with the number of lines lost, and the same count is written to
 *   the file itself, before anything else, as a gap line that `gapLine`
 *   builds. Lines lost to a full queue while the file works get the same
 *   gap line ahead of the next write.
 * - A write cut short (ENOSPC after part of a batch) leaves part of a line
 *   in the file: the next write starts with a newline so that fragment
 *   stands alone, and the cut line is written again in full.
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { Logger } from '../log.js';

export type AuditFileState = 'opening' | 'open' | 'failing' | 'closed';

/** Bytes handed to the kernel in one write at most. */
const MAX_BATCH_BYTES = 64 * 1024;

export interface AuditFileOptions {
  path: string;
  logger: Logger;
  /** Bytes of lines that may wait unwritten; past it lines are counted as lost. */
  maxQueuedBytes: number;
  /** First wait before opening the file again after a failure; doubles up to `maxRetryMs`. */
  retryMs: number;
  maxRetryMs: number;
  /** The line (with its newline) recording `lost` lines not written since `since`, and the error if writing failed. */
  gapLine(lost: number, since: Date, error: string | undefined): string;
}

interface Failure {
  since: Date;
  error: string;
}

export class AuditFile {
  private state: AuditFileState = 'opening';
  private handle: FileHandle | undefined;
  private queue: Array<{ text: string; bytes: number }> = [];
  private queueHead = 0;
  private queuedBytes = 0;
  private writing = false;
  private lost = 0;
  private lostSince: Date | undefined;
  private failure: Failure | undefined;
  /** Part of a line reached the file before a write failed. */
  private fragmentInFile = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs: number;
  private idleWaiters: Array<() => void> = [];
  private batchDoneWaiters: Array<() => void> = [];

  constructor(private readonly options: AuditFileOptions) {
    this.retryDelayMs = options.retryMs;
    void this.reopen();
  }

  get currentState(): AuditFileState {
    return this.state;
  }

  /** Queues `line` (ending in a newline); counts it as lost if the queue is full or the file closed. */
  append(line: string): void {
    const bytes = Buffer.byteLength(line);
    if (this.state === 'closed' || this.queuedBytes + bytes > this.options.maxQueuedBytes) {
      this.countLost();
      return;
    }
    this.queue.push({ text: line, bytes });
    this.queuedBytes += bytes;
    this.pump();
  }

  /**
   * Writes what is queued and closes. A file still failing gets one last
   * attempt; what cannot be written then is logged as lost.
   */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    if (this.state !== 'failing') await this.idle();
    if (this.state === 'failing') {
      this.cancelRetry();
      await this.reopen();
      // reopen() changed the state (the compiler cannot see it).
      if (this.currentState === 'open') await this.idle();
      this.cancelRetry();
    }
    const unwritten = this.lost + (this.queue.length - this.queueHead);
    if (this.state === 'failing' && unwritten > 0) {
      this.options.logger.error({ audit: this.options.path, lost: unwritten }, 'audit log closed while it could not be written; entries lost');
    }
    this.state = 'closed';
    this.queue = [];
    this.queueHead = 0;
    await this.handle?.close().catch(() => undefined);
    this.handle = undefined;
  }

  /**
   * Opens the path again (SIGHUP, after logrotate moved the file away): the
   * batch being written finishes in the old file, every later line goes to
   * the file now at the path. Lines appended meanwhile wait in the queue.
   */
  async reopenPath(): Promise<void> {
    if (this.state === 'closed' || this.state === 'opening') return;
    if (this.state === 'failing') {
      this.cancelRetry();
      await this.reopen();
      return;
    }
    this.state = 'opening';
    if (this.writing) await new Promise<void>((resolve) => this.batchDoneWaiters.push(resolve));
    const old = this.handle;
    this.handle = undefined;
    await old?.close().catch(() => undefined);
    await this.reopen();
  }

  private cancelRetry(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private countLost(): void {
    if (this.lost === 0) this.lostSince = new Date();
    this.lost++;
  }

  /** Resolves once nothing is queued or being written, or the file has failed. */
  private idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    return this.state === 'failing' || this.state === 'closed' || (!this.writing && this.state === 'open' && this.queueHead === this.queue.length && this.lost === 0);
  }

  private wakeIdleWaiters(): void {
    if (!this.isIdle()) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** Opens the path and writes what says a gap was there; on success writing goes on, else another try is scheduled. */
  private async reopen(): Promise<void> {
    this.retryTimer = undefined;
    let handle: FileHandle | undefined;
    try {
      handle = await open(this.options.path, 'a', 0o600);
      this.handle = handle;
      const gap = this.gapText();
      if (gap !== '') await this.writeAll(gap);
    } catch (error) {
      if (((error as { bytesWritten?: number }).bytesWritten ?? 0) > 0) this.fragmentInFile = true;
      await handle?.close().catch(() => undefined);
      this.handle = undefined;
      this.failed(error as Error);
      return;
    }
    if (this.failure !== undefined) {
      this.options.logger.warn(
        { audit: this.options.path, lost: this.lost, since: this.failure.since.toISOString() },
        'audit log writable again; the number of lost entries is recorded in it',
      );
    }
    this.failure = undefined;
    this.lost = 0;
    this.lostSince = undefined;
    this.fragmentInFile = false;
    this.retryDelayMs = this.options.retryMs;
    this.state = 'open';
    this.pump();
    this.wakeIdleWaiters();
  }

  /** What goes first once the file takes writes again: a newline ending a cut line, and the gap line. */
  private gapText(): string {
    let text = this.fragmentInFile ? '\n' : '';
    if (this.failure !== undefined || this.lost > 0) {
      text += this.options.gapLine(this.lost, this.failure?.since ?? this.lostSince ?? new Date(), this.failure?.error);
    }
    return text;
  }

  private failed(error: Error): void {
    const wasOpen = this.state !== 'failing';
    if (this.state !== 'closed') this.state = 'failing';
    if (this.failure === undefined) {
      this.failure = { since: new Date(), error: error.message };
      this.options.logger.error(
        { audit: this.options.path, err: error.message, retryMs: this.retryDelayMs, maxQueuedBytes: this.options.maxQueuedBytes },
        'audit log cannot be written; retrying (entries are kept up to the queue limit, then counted as lost)',
      );
    } else if (!wasOpen) {
      this.retryDelayMs = Math.min(this.retryDelayMs * 2, this.options.maxRetryMs);
    }
    this.wakeIdleWaiters();
    if (this.state === 'failing') {
      this.retryTimer = setTimeout(() => void this.reopen(), this.retryDelayMs);
      this.retryTimer.unref();
    }
  }

  /** Writes the queue's head, one batch at a time, while the file is open. */
  private pump(): void {
    if (this.writing || this.state !== 'open' || this.handle === undefined) return;
    if (this.queueHead === this.queue.length && this.lost === 0) return;
    this.writing = true;
    void this.writeBatch(this.handle).finally(() => {
      this.writing = false;
      for (const resolve of this.batchDoneWaiters.splice(0)) resolve();
      this.pump();
      this.wakeIdleWaiters();
    });
  }

  private async writeBatch(handle: FileHandle): Promise<void> {
    const gap = this.lost > 0 ? this.gapText() : '';
    const lostInGap = this.lost;
    const gapBytes = Buffer.byteLength(gap);
    let batch = gap;
    let end = this.queueHead;
    let batchBytes = gapBytes;
    while (end < this.queue.length && (end === this.queueHead || batchBytes + this.queue[end]!.bytes <= MAX_BATCH_BYTES)) {
      batch += this.queue[end]!.text;
      batchBytes += this.queue[end]!.bytes;
      end++;
    }
    // Lines lost while this batch is written are counted from zero again.
    this.lost -= lostInGap;
    if (lostInGap > 0 && this.lost === 0) this.lostSince = undefined;
    let written = 0;
    try {
      written = await this.writeAll(batch, handle);
    } catch (error) {
      written = (error as { bytesWritten?: number }).bytesWritten ?? 0;
      this.settleWritten(written, gapBytes, end, lostInGap);
      this.handle = undefined;
      await handle.close().catch(() => undefined);
      this.failed(error as Error);
      return;
    }
    this.settleWritten(written, gapBytes, end, 0);
  }

  /** Drops the lines that reached the file; notes a line cut in the middle; puts back an unwritten gap's count. */
  private settleWritten(writtenBytes: number, gapBytes: number, end: number, lostInGap: number): void {
    let offset = gapBytes;
    if (writtenBytes < gapBytes) {
      if (lostInGap > 0 && this.lost === 0) this.lostSince = new Date();
      this.lost += lostInGap;
      this.fragmentInFile = writtenBytes > 0;
      return;
    }
    while (this.queueHead < end && offset + this.queue[this.queueHead]!.bytes <= writtenBytes) {
      offset += this.queue[this.queueHead]!.bytes;
      this.queuedBytes -= this.queue[this.queueHead]!.bytes;
      this.queueHead++;
    }
    this.fragmentInFile = offset < writtenBytes;
    if (this.queueHead === this.queue.length) {
      this.queue = [];
      this.queueHead = 0;
    }
  }

  /** Writes all of `text`, however many calls it takes; a failure carries `bytesWritten` so far. */
  private async writeAll(text: string, handle = this.handle!): Promise<number> {
    const bytes = Buffer.from(text);
    let offset = 0;
    while (offset < bytes.length) {
      try {
        const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
        offset += bytesWritten;
      } catch (error) {
        throw Object.assign(error as Error, { bytesWritten: offset });
      }
    }
    return offset;
  }
}
