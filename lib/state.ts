/**
 * A monitor's run state: one enum, one transition function, every change
 * logged and emitted on `state$`, illegal moves refused (one state enum and one transition function, never parallel booleans).
 *
 *   connecting ──▶ negotiating ──▶ ready ──▶ closed
 *        │               │                     ▲
 *        └───────────────┴─────────────────────┘
 */
import type { Observable } from 'rxjs';
import { BehaviorSubject } from './rx.js';
import type { Logger } from './log.js';

export type MonitorState = 'connecting' | 'negotiating' | 'ready' | 'closed';

const NEXT_STATES: Record<MonitorState, readonly MonitorState[]> = {
  connecting: ['negotiating', 'ready', 'closed'],
  negotiating: ['ready', 'closed'],
  ready: ['closed'],
  closed: [],
};

export class MonitorStateMachine {
  private readonly subject = new BehaviorSubject<MonitorState>('connecting');
  /** Replays the current state to each new subscriber; completes after `closed`. */
  readonly state$: Observable<MonitorState> = this.subject.asObservable();

  constructor(
    private readonly logger: Logger,
    private readonly label: string,
  ) {}

  get current(): MonitorState {
    return this.subject.value;
  }

  /** Moves to `next`; throws on a move the diagram above does not have. */
  transition(next: MonitorState, reason: string): void {
    const current = this.subject.value;
    if (!NEXT_STATES[current].includes(next)) {
      throw new Error(`illegal monitor state change ${current} → ${next} (${reason})`);
    }
    this.logger.debug({ monitor: this.label, from: current, to: next, reason }, 'monitor state');
    this.subject.next(next);
    if (next === 'closed') this.subject.complete();
  }
}
