/**
 * What connect() is given, checked before anything is opened: a wrong
 * option fails at once with InvalidArgumentError naming it, instead of
 * surfacing later as a timeout or a monitor that speaks "something else".
 * Takes `unknown`, since JavaScript callers (and TypeScript ones with casts)
 * pass whatever they have.
 */
import { InvalidArgumentError } from './errors.js';

const PROTOCOLS = ['auto', 'qmp', 'hmp', 'qga'];

/** Options holding a duration in ms: a positive finite number. */
const DURATIONS = ['greetingTimeoutMs', 'commandTimeoutMs'];
/** Options holding a count: a positive whole number. */
const COUNTS = ['maxMessageBytes', 'maxInFlight'];
const FLAGS = ['oob', 'wireIds', 'fdPassing'];

/** Throws InvalidArgumentError for the first thing wrong with connect()'s arguments. */
export function checkConnectArguments(target: unknown, options: unknown): void {
  checkTarget(target);
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError(`connect() options must be an object, got ${describe(options)}`);
  const given = options as Record<string, unknown>;
  const protocol = given.protocol;
  if (protocol !== undefined && !PROTOCOLS.includes(protocol as string)) {
    const hint = typeof protocol === 'string' && PROTOCOLS.includes(protocol.toLowerCase()) ? ` (did you mean '${protocol.toLowerCase()}'?)` : '';
    throw new InvalidArgumentError(`connect(): protocol must be one of 'auto', 'qmp', 'hmp', 'qga', got ${describe(protocol)}${hint}`);
  }
  for (const name of DURATIONS) {
    const value = given[name];
    if (value !== undefined && !(typeof value === 'number' && Number.isFinite(value) && value > 0)) {
      throw new InvalidArgumentError(`connect(): ${name} must be a positive number of milliseconds, got ${describe(value)}`);
    }
  }
  for (const name of COUNTS) {
    const value = given[name];
    if (value !== undefined && !(Number.isSafeInteger(value) && (value as number) > 0)) {
      throw new InvalidArgumentError(`connect(): ${name} must be a positive whole number, got ${describe(value)}`);
    }
  }
  for (const name of FLAGS) {
    const value = given[name];
    if (value !== undefined && typeof value !== 'boolean') throw new InvalidArgumentError(`connect(): ${name} must be true or false, got ${describe(value)}`);
  }
}

function checkTarget(target: unknown): void {
  if (typeof target === 'string') {
    // unix:///run/x.sock or tcp://host:1234 would otherwise be taken as a relative path.
    const url = /^([a-z][a-z0-9+.-]*):\/\//i.exec(target);
    if (url) {
      throw new InvalidArgumentError(
        `connect(): ${JSON.stringify(target)} looks like a URL; give a socket path, unix:PATH or tcp:HOST:PORT (no "//")`,
      );
    }
    return;
  }
  if (typeof target !== 'object' || target === null) {
    throw new InvalidArgumentError(`connect(): the target must be a path, unix:PATH, tcp:HOST:PORT or an object, got ${describe(target)}`);
  }
  const given = target as Record<string, unknown>;
  if ('socket' in given) return;
  if ('path' in given) {
    if (typeof given.path !== 'string' || given.path === '') throw new InvalidArgumentError(`connect(): target.path must be a non-empty string, got ${describe(given.path)}`);
    return;
  }
  if ('host' in given || 'port' in given) {
    if (typeof given.host !== 'string' || given.host === '') throw new InvalidArgumentError(`connect(): target.host must be a non-empty string, got ${describe(given.host)}`);
    if (!(Number.isInteger(given.port) && (given.port as number) >= 1 && (given.port as number) <= 65535)) {
      throw new InvalidArgumentError(`connect(): target.port must be a whole number from 1 to 65535, got ${describe(given.port)}`);
    }
    return;
  }
  throw new InvalidArgumentError('connect(): the target object needs path, host and port, or socket');
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  return typeof value;
}
