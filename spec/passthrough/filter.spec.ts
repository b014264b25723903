/**
 * The event filter against a reference implementation, on random event
 * names and patterns. The reference is written from the semantics, not from
 * the code: equality; case-insensitive equality by ECMAScript's
 * Canonicalize (the per-character folding of a RegExp without `u`); and,
 * for REGEX, a set-of-positions matcher over a small regular-expression
 * grammar (literals, `.`, classes, `*` `+` `?`, `^` `$`, `|`), searched
 * anywhere in the name.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { BehaviorSubject, Subject } from 'rxjs';
import type { Monitor, MonitorState, QmpEvent } from '../../lib/index.js';
import { compileEventFilter } from '../../lib/passthrough/filter.js';
import { deregisterMonitorEvent, MonitorEventFlags, registerMonitorEvent } from '../../lib/passthrough/index.js';
import { propertyRuns } from '../helpers/property-runs.js';

const { REGEX, NOCASE } = MonitorEventFlags;

/** ECMAScript Canonicalize(ch) for a RegExp with `i` and without `u`. */
function canonicalize(char: string): string {
  const upper = char.toUpperCase();
  if (upper.length !== 1) return char;
  if (char.charCodeAt(0) >= 128 && upper.charCodeAt(0) < 128) return char;
  return upper;
}

function sameChar(a: string, b: string, ignoreCase: boolean): boolean {
  return ignoreCase ? canonicalize(a) === canonicalize(b) : a === b;
}

function equalNames(a: string, b: string, ignoreCase: boolean): boolean {
  return a.length === b.length && [...Array(a.length).keys()].every((index) => sameChar(a[index]!, b[index]!, ignoreCase));
}

/** Letters that fold interestingly: ß (no single upper case), ſ and K (fold to ASCII only with `u`), é/É, µ. */
const NAME_CHARS = ['A', 'B', 'S', 'T', 'a', 'b', 's', 't', '_', '-', '\u00e9', '\u00c9', '\u00df', '\u017f', '\u212a', 'k', 'K', '\u00b5'];
const META_CHARS = ['.', '*', '+', '?', '(', ')', '[', ']', '{', '}', '\\', '^', '$', '|', '/'];

const nameChar = fc.constantFrom(...NAME_CHARS);
const eventName = fc.array(fc.oneof({ weight: 9, arbitrary: nameChar }, { weight: 1, arbitrary: fc.constantFrom(...META_CHARS) }), { maxLength: 6 }).map((chars) => chars.join(''));

/** A name related to `base`: itself, case-swapped in places, or one character changed. */
const relatedName = (base: string): fc.Arbitrary<string> =>
  fc.oneof(
    fc.constant(base),
    fc.array(fc.boolean(), { minLength: base.length, maxLength: base.length }).map((swaps) =>
      [...base].map((char, index) => (swaps[index] ? (char === char.toUpperCase() ? char.toLowerCase() : char.toUpperCase()) : char)).join(''),
    ),
    fc.tuple(fc.nat(), nameChar).map(([at, char]) => (base.length === 0 ? char : base.slice(0, at % base.length) + char + base.slice((at % base.length) + 1))),
    eventName,
  );

test('property: no flags is equality, NOCASE is equality under case folding (metacharacters are literal)', () => {
  fc.assert(
    fc.property(
      eventName.chain((event) => fc.tuple(fc.constant(event), relatedName(event))),
      ([event, name]) => {
        assert.is(compileEventFilter(event, 0)(name), name === event, `${event} vs ${name}`);
        assert.is(compileEventFilter(event, NOCASE)(name), equalNames(name, event, true), `NOCASE ${event} vs ${name}`);
        assert.is(compileEventFilter(null, NOCASE)(name), true);
      },
    ),
    { numRuns: propertyRuns(3000) },
  );
});

type Atom = { kind: 'char'; char: string } | { kind: 'any' } | { kind: 'class'; chars: string[]; negated: boolean };
interface Term {
  atom: Atom;
  quantifier: '' | '*' | '+' | '?';
}
interface Alternative {
  start: boolean;
  terms: Term[];
  end: boolean;
}

const atom: fc.Arbitrary<Atom> = fc.oneof(
  { weight: 6, arbitrary: nameChar.map((char): Atom => ({ kind: 'char', char })) },
  { weight: 1, arbitrary: fc.constant<Atom>({ kind: 'any' }) },
  { weight: 2, arbitrary: fc.record({ chars: fc.uniqueArray(nameChar, { minLength: 1, maxLength: 3 }), negated: fc.boolean() }).map((c): Atom => ({ kind: 'class', ...c })) },
);
const alternative: fc.Arbitrary<Alternative> = fc.record({
  start: fc.boolean(),
  terms: fc.array(fc.record({ atom, quantifier: fc.constantFrom<Term['quantifier']>('', '', '*', '+', '?') }), { maxLength: 4 }),
  end: fc.boolean(),
});
const pattern = fc.array(alternative, { minLength: 1, maxLength: 3 });

const escapeChar = (char: string): string => (/[-\\\]^[]/.test(char) ? `\\${char}` : char);

function render(alternatives: Alternative[]): string {
  const renderAtom = (a: Atom): string =>
    a.kind === 'char' ? escapeChar(a.char) : a.kind === 'any' ? '.' : `[${a.negated ? '^' : ''}${a.chars.map(escapeChar).join('')}]`;
  return alternatives
    .map((alt) => `${alt.start ? '^' : ''}${alt.terms.map((term) => renderAtom(term.atom) + term.quantifier).join('')}${alt.end ? '$' : ''}`)
    .join('|');
}

/** Does some substring of `name` match? Positions reachable after each term, from every start. */
function referenceSearch(alternatives: Alternative[], name: string, ignoreCase: boolean): boolean {
  const atomMatches = (a: Atom, char: string): boolean => {
    if (a.kind === 'char') return sameChar(a.char, char, ignoreCase);
    if (a.kind === 'any') return !'\n\r\u2028\u2029'.includes(char);
    return a.chars.some((member) => sameChar(member, char, ignoreCase)) !== a.negated;
  };
  const step = (positions: Set<number>, a: Atom): Set<number> =>
    new Set([...positions].filter((at) => at < name.length && atomMatches(a, name[at]!)).map((at) => at + 1));
  return alternatives.some((alt) => {
    let positions = new Set(alt.start ? [0] : [...Array(name.length + 1).keys()]);
    for (const { atom: a, quantifier } of alt.terms) {
      if (quantifier === '') positions = step(positions, a);
      else if (quantifier === '?') positions = new Set([...positions, ...step(positions, a)]);
      else {
        let frontier = quantifier === '+' ? step(positions, a) : positions;
        const reached = new Set(frontier);
        while (frontier.size > 0) {
          frontier = new Set([...step(frontier, a)].filter((at) => !reached.has(at)));
          for (const at of frontier) reached.add(at);
        }
        positions = reached;
      }
    }
    return alt.end ? positions.has(name.length) : positions.size > 0;
  });
}

test('property: REGEX finds the pattern anywhere in the name; NOCASE adds case folding', () => {
  const shortName = fc.array(nameChar, { maxLength: 7 }).map((chars) => chars.join(''));
  fc.assert(
    fc.property(pattern, shortName, fc.boolean(), (alternatives, name, ignoreCase) => {
      const source = render(alternatives);
      const filter = compileEventFilter(source, REGEX | (ignoreCase ? NOCASE : 0));
      assert.is(filter(name), referenceSearch(alternatives, name, ignoreCase), `/${source}/${ignoreCase ? 'i' : ''} on ${JSON.stringify(name)}`);
      assert.is(filter(name), filter(name), 'no state carried from one event to the next');
    }),
    { numRuns: propertyRuns(5000) },
  );
});

/** The smallest Monitor the registry needs: an events$ the test drives. */
function fakeMonitor(): { monitor: Monitor; events: Subject<QmpEvent> } {
  const events = new Subject<QmpEvent>();
  const state = new BehaviorSubject<MonitorState>('ready');
  const monitor = { protocol: 'qmp', events$: events, state$: state, logger: { debug() {}, info() {}, warn() {}, error() {} } } as unknown as Monitor;
  return { monitor, events };
}

test('property: through the registry, every callback gets exactly the events its filter passes, in order', () => {
  const registration = fc.record({ event: fc.option(eventName, { nil: null }), flags: fc.constantFrom(0, NOCASE) });
  const stream = fc.array(eventName, { maxLength: 30 });
  fc.assert(
    fc.property(fc.array(registration, { minLength: 1, maxLength: 6 }), stream, fc.nat(), (registrations, names, dropAt) => {
      const { monitor, events } = fakeMonitor();
      const received = registrations.map(() => [] as string[]);
      const ids = registrations.map(({ event, flags }, index) => registerMonitorEvent(monitor, event, (name) => void received[index]!.push(name), flags));
      // One registration goes away halfway through the stream.
      const dropped = dropAt % registrations.length;
      const half = Math.floor(names.length / 2);
      names.forEach((name, at) => {
        if (at === half) deregisterMonitorEvent(monitor, ids[dropped]!);
        events.next({ event: name, timestamp: { seconds: at, microseconds: 0 } });
      });
      registrations.forEach(({ event, flags }, index) => {
        const stream = index === dropped ? names.slice(0, half) : names;
        const expected = stream.filter((name) => event === null || equalNames(name, event, flags === NOCASE));
        assert.equal(received[index], expected);
      });
    }),
    { numRuns: 500 },
  );
});

test.run();
