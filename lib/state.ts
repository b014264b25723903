/**
 * A run state: one enum, one transition function, every change logged and
 * emitted on `state$`, illegal moves refused (one state enum and one
 * transition function, never parallel booleans). Monitors, proxy sessions,
 * the upstream link and RPC connections each use one, with their own states.
 *
 * A monitor's states:
 *
 *   connecting ──▶ negotiating ──▶ ready ──▶ closed
 *        │               │                     ▲
 *        └───────────────┴─────────────────────┘
 */
import type { BehaviorSubject, Observable } from 'rxjs';
import { newBehaviorSubject } from './lazy-rx.js';
import { isDebugEnabled, type Logger } from './log.js';

/** For each state, the states it may move to; a state with none is final. */
export type Transitions<State extends string> = Readonly<Record<State, readonly State[]>>;

export class StateMachine<State extends string> {
  private value: State;
  private changedAtMs = Date.now();
  /** Made on first use of state$: most sessions and links are never observed. */
  private subject: BehaviorSubject<State> | undefined;

  constructor(
    initial: State,
    private readonly transitions: Transitions<State>,
    private readonly logger: Logger,
    /** Fields that name the owner in the log line of every change, e.g. `{ monitor: label }`. */
    private readonly logFields: object,
    /** The log message of every change, e.g. 'monitor state'. */
    private readonly logMessage: string,
  ) {
    this.value = initial;
  }

  get current(): State {
    return this.value;
  }

  /** When the current state began (epoch ms): construction or the last change. */
  get since(): number {
    return this.changedAtMs;
  }

  /** Replays the current state to each new subscriber; completes in a final state. */
  get state$(): Observable<State> {
    if (this.subject === undefined) {
      this.subject = newBehaviorSubject<State>(this.value);
      if (this.isFinal(this.value)) this.subject.complete();
    }
    return this.subject.asObservable();
  }

  /** Moves to `next`; throws on a move the transition table does not have. */
  transition(next: State, reason: string): void {
    const current = this.value;
    if (!this.transitions[current].includes(next)) {
      throw new Error(`illegal ${this.logMessage} change ${current} → ${next} (${reason})`);
    }
    if (isDebugEnabled(this.logger)) this.logger.debug({ ...this.logFields, from: current, to: next, reason }, this.logMessage);
    this.value = next;
    this.changedAtMs = Date.now();
    if (this.subject !== undefined) {
      this.subject.next(next);
      if (this.isFinal(next)) this.subject.complete();
    }
  }

  /** Moves to `next` when the table allows it; returns whether it moved. */
  tryTransition(next: State, reason: string): boolean {
    if (!this.transitions[this.value].includes(next)) return false;
    this.transition(next, reason);
    return true;
  }

  private isFinal(state: State): boolean {
    return this.transitions[state].length === 0;
  }
}

export type MonitorState = 'connecting' | 'negotiating' | 'ready' | 'closed';

const MONITOR_TRANSITIONS: Transitions<MonitorState> = {
  connecting: ['negotiating', 'ready', 'closed'],
  negotiating: ['ready', 'closed'],
  ready: ['closed'],
  closed: [],
};

export class MonitorStateMachine extends StateMachine<MonitorState> {
  constructor(logger: Logger, label: string) {
    super('connecting', MONITOR_TRANSITIONS, logger, { monitor: label }, 'monitor state');
  }
}
