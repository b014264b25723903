/**
 * The rxjs classes the library makes, from their own modules. The package's
 * index loads all of rxjs (over 200 modules, every operator), which every
 * short-lived client would pay for at start-up; these modules are the ones
 * the index re-exports, so the classes are the same objects and users'
 * operators from 'rxjs' apply to what the library returns.
 */
export { BehaviorSubject } from 'rxjs/internal/BehaviorSubject';
export { Subject } from 'rxjs/internal/Subject';
