/**
 * rxjs's Subject and BehaviorSubject, loaded when a session first makes
 * one. The session core, the QMP client and the state machine are loaded by
 * every short-lived client (`qmpx exec`), which never subscribes to
 * anything: made this way, such a run does not load rxjs at all. The
 * classes are the very ones lib/rx.ts and 'rxjs' export (the same CommonJS
 * modules), so users' operators apply to what the library returns.
 */
import { createRequire } from 'node:module';
import type { BehaviorSubject, Observable, Subject } from 'rxjs';

const require = createRequire(import.meta.url);

interface RxClasses {
  Subject: typeof Subject;
  BehaviorSubject: typeof BehaviorSubject;
}

let classes: RxClasses | undefined;

function rx(): RxClasses {
  classes ??= {
    Subject: (require('rxjs/internal/Subject') as { Subject: typeof Subject }).Subject,
    BehaviorSubject: (require('rxjs/internal/BehaviorSubject') as { BehaviorSubject: typeof BehaviorSubject }).BehaviorSubject,
  };
  return classes;
}

export function newBehaviorSubject<T>(value: T): BehaviorSubject<T> {
  return new (rx().BehaviorSubject)<T>(value);
}

/**
 * A Subject made when its observable is first asked for. What is pushed
 * before then goes nowhere, as it would on a Subject that nobody has
 * subscribed to; asked for after complete(), it completes at once.
 */
export class LazySubject<T> {
  private subject: Subject<T> | undefined;
  private observable: Observable<T> | undefined;
  private completed = false;

  /** Whether anything is subscribed now. */
  get observed(): boolean {
    return this.subject?.observed === true;
  }

  next(value: T): void {
    this.subject?.next(value);
  }

  complete(): void {
    this.completed = true;
    this.subject?.complete();
  }

  asObservable(): Observable<T> {
    if (this.observable === undefined) {
      const subject = new (rx().Subject)<T>();
      if (this.completed) subject.complete();
      this.subject = subject;
      this.observable = subject.asObservable();
    }
    return this.observable;
  }
}
