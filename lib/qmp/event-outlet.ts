/**
 * Where a QMP session's events go: `events$`, and `eventFrames$` with
 * QEMU's text. From connect until the caller has had the turn in which
 * connect() resolves they are held: otherwise an event arriving in the same
 * chunk as the negotiation reply would be emitted before anyone could
 * subscribe. Held events still go out if the session ends meanwhile; the
 * streams complete after them.
 */
import type { Observable } from 'rxjs';
import type { QmpEventFrame } from '../contract.js';
import { LazySubject } from '../lazy-rx.js';
import type { QmpEvent } from './wire.js';

export class QmpEventOutlet {
  private readonly framesSubject = new LazySubject<QmpEventFrame>();
  private held: QmpEventFrame[] | undefined = [];
  private releaseScheduled = false;

  /** `eventsSubject`: the session's events$. */
  constructor(private readonly eventsSubject: LazySubject<QmpEvent>) {}

  get frames$(): Observable<QmpEventFrame> {
    return this.framesSubject.asObservable();
  }

  push(event: QmpEvent, text: string): void {
    if (this.held) this.held.push({ event, text });
    else this.emit(event, text);
  }

  /** Emits the held events on a later turn, then calls `released` (with nothing held from then on). */
  releaseLater(released: () => void): void {
    this.releaseScheduled = true;
    setImmediate(() => {
      const held = this.held ?? [];
      this.held = undefined;
      for (const frame of held) this.emit(frame.event, frame.text);
      released();
    });
  }

  /** The session ended: completes the streams, unless held events are yet to go out (releaseLater's `released` does it then). */
  end(): void {
    if (!this.releaseScheduled || this.held === undefined) this.complete();
  }

  complete(): void {
    this.eventsSubject.complete();
    this.framesSubject.complete();
  }

  private emit(event: QmpEvent, text: string): void {
    this.eventsSubject.next(event);
    if (this.framesSubject.observed) this.framesSubject.next({ event, text });
  }
}
