/**
 * A scriptable fake QMP peer: a UNIX socket server in a temp dir for what a
 * real QEMU cannot do on demand (floods, faults, malformed bytes, silent or
 * half-finished peers). Behaviour is tested against real QEMU; use this only
 * where QEMU cannot be made to misbehave.
 *
 * Like libvirt's scripted test monitor it is strict: a command the script
 * did not expect fails the test, and so does a scripted step that was never
 * used. Script every step BEFORE the client acts:
 *
 *   const peer = await startFakePeer();          // greets like QEMU 7.2 on accept
 *   peer.expect('qmp_capabilities').reply({ return: {} })
 *       .expect('stop').event('STOP').reply({ return: {} })
 *       .send('{"return": {}, "garbage')         // half an object...
 *       .disconnect();                            // ...then hang up
 *   const monitor = await connect(peer.path);
 *   ...
 *   await peer.done();   // rejects on any unexpected input or unused step
 *   await peer.close();
 *
 * Steps run in order, one at a time, against the current connection (the
 * last one accepted). The first step, an implicit `accept()`, takes the
 * first connection and sends the greeting. Input from the client is split
 * into lines (the client sends one compact JSON object per line); each line
 * is recorded, then offered, in order:
 *   1. to silence: after `silence()` everything is recorded and ignored;
 *   2. to the auto-responder, if its table has the line's command;
 *   3. to the script's next `expect()`. A line arriving when the script has
 *      nothing left to expect fails the test at once and is answered with a
 *      GenericError, so the client does not hang.
 * Once the script has failed, every further JSON command is answered with a
 * GenericError naming the failure.
 *
 * Replies to a command carry the command's `id` (if it had one and the reply
 * has none) where QEMU puts it: last in a `return`, first in an `error`,
 * re-serialised losslessly (docs/monitor-facts.md §2).
 */

import { createServer, type Server, type Socket } from 'node:net';
import { relative } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { FakeConnection, isPlainObject, type ReceivedLine } from './fake-connection.js';
import { formatLikeQemu, qmpEvent, rawJson, QEMU_7_2_GREETING } from './qemu-json.js';
import { createTempDir, removeTempDir, socketPathIn } from './temp-dir.js';

export { FakeConnection, type ReceivedLine } from './fake-connection.js';
export { formatLikeQemu, qmpEvent, rawJson, RawJson, QEMU_7_2_GREETING } from './qemu-json.js';

/**
 * What the peer sends: a string or bytes go out verbatim (include any line
 * end yourself); any other value is JSON formatted like QEMU
 * (`formatLikeQemu`) followed by the peer's `lineEnd`.
 */
export type Outgoing = string | Uint8Array | object | number | boolean | bigint | null;

/** A reply, or a function computing it from the command it answers. */
export type Reply = Outgoing | ((command: ReceivedLine) => Outgoing);

/**
 * Which input an `expect()` accepts: a command name (`execute` or
 * `exec-oob`), a predicate, or an object whose given fields must all hold
 * (`arguments` compared deeply; `text` matches the whole line, for non-JSON
 * input such as HMP command lines).
 */
export type CommandMatcher =
  | string
  | ((line: ReceivedLine) => boolean)
  | {
      execute?: string;
      oob?: boolean;
      arguments?: unknown;
      text?: string | RegExp;
      where?: (line: ReceivedLine) => boolean;
    };

/** Options for `startFakePeer`; every field is optional. */
export interface FakePeerOptions {
  /**
   * Sent on every accept. Default: QEMU 7.2.22's greeting bytes with CRLF
   * (`QEMU_7_2_GREETING`). `null`: silent, as qemu-ga is.
   */
  greeting?: Outgoing;
  /** Terminates formatted JSON: `'\r\n'` like QEMU (default), `'\n'` like qemu-ga. */
  lineEnd?: string;
  /** Enables the auto-responder with this table from the start (see `autoRespond`). */
  autoRespond?: Record<string, Reply>;
}

/** Deadline for `done()` and `connection()` unless the caller gives one. */
const DEFAULT_WAIT_TIMEOUT_MS = 10_000;
/** A flood writes this much per write() before honouring backpressure. */
const FLOOD_BATCH_BYTES = 64 * 1024;

/** Starts a fake peer listening on `DIR/fake.sock` in a fresh temp dir. */
export async function startFakePeer(options: FakePeerOptions = {}): Promise<FakePeer> {
  const dir = createTempDir('fake');
  const path = socketPathIn(dir, 'fake.sock');
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return new FakePeer(dir, path, server, options);
}

/** A scriptable fake peer; see the module comment. Build scripts by chaining. */
export class FakePeer {
  /** Every connection accepted so far, in order. */
  readonly connections: FakeConnection[] = [];
  /** Every line received on any connection, in arrival order. */
  readonly received: ReceivedLine[] = [];
  /** What went wrong, in order; non-empty means the test must fail. */
  readonly failures: string[] = [];

  private readonly steps: Step[] = [];
  private nextStep = 0;
  private current: FakeConnection | undefined;
  private lastCommand: ReceivedLine | undefined;
  private readonly unclaimed: FakeConnection[] = [];
  private readonly scriptState = new Map<FakeConnection, ConnectionScriptState>();
  private readonly autoReplies = new Map<string, Reply>();
  private readonly greeting: Outgoing;
  private readonly lineEnd: string;
  private silent = false;
  private halted = false;
  private readonly changed = new ChangeSignal();

  constructor(
    /** The private temp dir; removed by `close()`. */
    readonly dir: string,
    /** The socket path clients connect to. */
    readonly path: string,
    private readonly server: Server,
    options: FakePeerOptions,
  ) {
    this.greeting = options.greeting === undefined ? `${QEMU_7_2_GREETING}\r\n` : options.greeting;
    this.lineEnd = options.lineEnd ?? '\r\n';
    if (options.autoRespond !== undefined) this.autoRespond(options.autoRespond);
    server.on('connection', (socket) => this.onConnection(socket));
    this.steps.push({ kind: 'accept', greeting: undefined, site: 'startFakePeer' });
    void this.runScript();
  }

  // ---- scripting: each appends a step and returns this --------------------------------

  /**
   * Waits for the client's next line on the current connection; it must
   * match, else the test fails. `description` names it in failure messages.
   */
  expect(matcher: CommandMatcher, description?: string): this {
    if (this.steps.some((step) => step.kind === 'silence')) {
      throw new Error('fake peer: expect() after silence() can never see input');
    }
    return this.addStep({ kind: 'expect', matcher, description: description ?? describeMatcher(matcher) });
  }

  /** Answers the most recently expected command (echoing its id, see the module comment). */
  reply(reply: Reply): this {
    if (!this.steps.some((step) => step.kind === 'expect')) throw new Error('fake peer: reply() needs an expect() before it');
    return this.addStep({ kind: 'reply', reply });
  }

  /** `reply({ error: { class: errorClass, desc } })`. */
  replyError(errorClass: string, desc: string): this {
    return this.reply({ error: { class: errorClass, desc } });
  }

  /** Sends `data` when the script reaches this step; a function is called then, to build it. */
  send(data: Outgoing | (() => Outgoing)): this {
    return this.addStep({ kind: 'send', produce: typeof data === 'function' ? (data as () => Outgoing) : () => data });
  }

  /** Sends a QMP event stamped when the step runs: `{"timestamp": ..., "event": NAME, "data": ...}`. */
  event(name: string, data?: Record<string, unknown>): this {
    return this.send(() => qmpEvent(name, data));
  }

  /**
   * Sends `count` messages as fast as the client takes them: batches of
   * ~64 KiB, waiting for 'drain' whenever write() says the socket is full
   * (see `FakeConnection.waitingForDrain`). A client that disconnects ends
   * the flood early without failing the script.
   */
  flood(count: number, message: Outgoing | ((index: number) => Outgoing)): this {
    return this.addStep({ kind: 'flood', count, message });
  }

  /** Ends the current connection once pending output is written, as QEMU's exit does. */
  disconnect(): this {
    return this.addStep({ kind: 'disconnect' });
  }

  /** Waits until the client closes the current connection. */
  expectClose(): this {
    return this.addStep({ kind: 'expectClose' });
  }

  /**
   * Waits for the next connection (queued ones first) and makes it current,
   * sending the greeting (`greeting` overrides the peer's for this one). The
   * script starts with one implicit accept; script another for each
   * reconnect. A connection the script never accepts fails the test.
   */
  accept(options: { greeting?: Outgoing } = {}): this {
    return this.addStep({ kind: 'accept', greeting: options.greeting });
  }

  /**
   * Waits until a matching line has been received on the current connection
   * (already or later; each call consumes one match), whoever handled it:
   * e.g. start a flood only after the auto-responder answered
   * qmp_capabilities. Does not take the line from `expect()`.
   */
  waitForCommand(matcher: CommandMatcher): this {
    return this.addStep({ kind: 'waitForCommand', matcher, description: describeMatcher(matcher) });
  }

  /** Holds the script until `condition` (a promise, or a function returning one, called when the step starts) resolves. */
  waitUntil(condition: Promise<unknown> | (() => Promise<unknown>), description = 'a condition'): this {
    return this.addStep({ kind: 'waitUntil', condition, description });
  }

  /** From this step on, everything received is recorded and nothing is answered or failed. */
  silence(): this {
    return this.addStep({ kind: 'silence' });
  }

  // ---- immediate (not steps) -----------------------------------------------------------

  /**
   * Answers every command named in `table` at once, on any connection,
   * concurrently with the script (`reply` semantics, ids echoed). Also
   * answers `qmp_capabilities` with `{"return": {}}` unless the table says
   * otherwise. Commands not in the table still go to the script.
   */
  autoRespond(table: Record<string, Reply>): this {
    if (!('qmp_capabilities' in table) && !this.autoReplies.has('qmp_capabilities')) {
      this.autoReplies.set('qmp_capabilities', { return: {} });
    }
    for (const [command, reply] of Object.entries(table)) this.autoReplies.set(command, reply);
    return this;
  }

  /** The command names (or, for non-commands, the text) of every line received, in order. */
  commands(): string[] {
    return this.received.map((line) => line.execute ?? line.text);
  }

  /** Resolves with connection number `index` once it has been accepted by the server. */
  async connection(index: number, timeoutMs = DEFAULT_WAIT_TIMEOUT_MS): Promise<FakeConnection> {
    return this.waitForState(timeoutMs, `connection #${index}`, () => this.connections[index]);
  }

  /**
   * Resolves once every scripted step has run and nothing unexpected is
   * pending; then checks as `assertDone()` does. Rejects at the first
   * failure, or after `timeoutMs` naming the step the script is stuck at.
   */
  async done(timeoutMs = DEFAULT_WAIT_TIMEOUT_MS): Promise<void> {
    await this.waitForState(timeoutMs, 'the script to finish', () => (this.failures.length > 0 || this.scriptFinished() ? true : undefined));
    this.assertDone();
  }

  /** Throws, with a full report, if anything failed or any scripted step is unused. Synchronous. */
  assertDone(): void {
    if (this.failures.length > 0 || !this.scriptFinished()) throw new Error(this.report('fake peer: script not satisfied'));
  }

  /** Stops the script, closes every connection and the server, removes the dir. Does not assert. */
  async close(): Promise<void> {
    this.halted = true;
    this.changed.fire();
    for (const connection of this.connections) connection.socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await removeTempDir(this.dir);
  }

  // ---- the script runner ----------------------------------------------------------------

  private addStep(step: StepWithoutSite): this {
    this.steps.push({ ...step, site: callSite() } as Step);
    this.changed.fire();
    return this;
  }

  private async runScript(): Promise<void> {
    while (!this.halted && this.failures.length === 0) {
      const step = this.steps[this.nextStep];
      if (step === undefined) {
        this.rejectLeftovers();
        await this.changed.next();
        continue;
      }
      try {
        await this.runStep(step);
      } catch (error) {
        if (!(error instanceof ScriptStopped)) {
          this.fail(`${describeStep(step)} failed: ${error instanceof Error ? error.message : String(error)}`);
        }
        return;
      }
      this.nextStep++;
      this.changed.fire();
    }
  }

  private async runStep(step: Step): Promise<void> {
    switch (step.kind) {
      case 'accept': {
        const connection = await this.until(() => this.unclaimed.shift());
        this.current = connection;
        this.lastCommand = undefined;
        const greeting = step.greeting === undefined ? this.greeting : step.greeting;
        if (greeting !== null) connection.write(this.render(greeting));
        return;
      }
      case 'expect': {
        const connection = this.currentConnection();
        const { pending } = this.stateOf(connection);
        const line = await this.until(() => pending.shift() ?? (connection.closed ? CONNECTION_CLOSED : undefined));
        if (line === CONNECTION_CLOSED) throw new Error(`connection #${connection.index} closed before it came`);
        if (!lineMatches(step.matcher, line)) {
          this.rejectLine(
            line,
            `unexpected input on connection #${line.connection}: ${quote(line.text)}, expected ${step.description} (scripted at ${step.site})`,
          );
          throw new ScriptStopped();
        }
        this.lastCommand = line;
        return;
      }
      case 'reply': {
        const command = this.lastCommand;
        if (command === undefined) throw new Error('no command to reply to on this connection');
        this.currentConnection().write(this.render(step.reply, command));
        return;
      }
      case 'send':
        this.currentConnection().write(this.render(step.produce()));
        return;
      case 'flood':
        return this.floodConnection(this.currentConnection(), step.count, step.message);
      case 'disconnect': {
        const connection = this.currentConnection();
        // end() flushes what is queued; destroy() then closes at once, like an exiting QEMU.
        if (!connection.closed) connection.socket.end(() => connection.socket.destroy());
        await this.until(() => (connection.closed ? true : undefined));
        return;
      }
      case 'expectClose': {
        const connection = this.currentConnection();
        await this.until(() => (connection.closed ? true : undefined));
        return;
      }
      case 'waitForCommand': {
        const connection = this.currentConnection();
        const state = this.stateOf(connection);
        await this.until(() => {
          while (state.observedLines < connection.lines.length) {
            const line = connection.lines[state.observedLines++];
            if (line !== undefined && lineMatches(step.matcher, line)) return true;
          }
          return undefined;
        });
        return;
      }
      case 'waitUntil': {
        const condition = typeof step.condition === 'function' ? step.condition() : step.condition;
        let outcome: { error: unknown } | undefined;
        condition.then(
          () => (outcome = { error: undefined }),
          (error: unknown) => (outcome = { error: error ?? new Error('rejected') }),
        ).finally(() => this.changed.fire());
        const settled = await this.until(() => outcome);
        if (settled.error !== undefined) throw settled.error;
        return;
      }
      case 'silence':
        this.silent = true;
        for (const state of this.scriptState.values()) state.pending.length = 0;
        return;
    }
  }

  private async floodConnection(connection: FakeConnection, count: number, message: Outgoing | ((index: number) => Outgoing)): Promise<void> {
    const fixedWire = typeof message === 'function' ? undefined : toBuffer(this.render(message));
    let batch: Buffer[] = [];
    let batchBytes = 0;
    for (let index = 0; index < count && !connection.closed; index++) {
      if (this.halted) throw new ScriptStopped();
      const wire = fixedWire ?? toBuffer(this.render((message as (index: number) => Outgoing)(index)));
      batch.push(wire);
      batchBytes += wire.length;
      if (batchBytes < FLOOD_BATCH_BYTES && index < count - 1) continue;
      const socketAcceptsMore = connection.write(batch.length === 1 ? wire : Buffer.concat(batch, batchBytes));
      batch = [];
      batchBytes = 0;
      if (!socketAcceptsMore) await connection.drained();
    }
  }

  /** Resolves with `probe()`'s first defined result; stops when the peer closes or the script has failed. */
  private async until<T>(probe: () => T | undefined): Promise<T> {
    for (;;) {
      if (this.halted || this.failures.length > 0) throw new ScriptStopped();
      const value = probe();
      if (value !== undefined) return value;
      await this.changed.next();
    }
  }

  private async waitForState<T>(timeoutMs: number, what: string, probe: () => T | undefined): Promise<T> {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.changed.fire();
    }, timeoutMs);
    try {
      for (;;) {
        const value = probe();
        if (value !== undefined) return value;
        if (timedOut) throw new Error(this.report(`fake peer: waited ${timeoutMs} ms for ${what}`));
        if (this.halted) throw new Error(this.report(`fake peer: closed while waiting for ${what}`));
        await this.changed.next();
      }
    } finally {
      clearTimeout(timer);
    }
  }

  private onConnection(socket: Socket): void {
    const connection = new FakeConnection(
      this.connections.length,
      socket,
      (line) => this.onLine(connection, line),
      () => this.changed.fire(),
    );
    this.connections.push(connection);
    this.scriptState.set(connection, { pending: [], observedLines: 0 });
    this.unclaimed.push(connection);
    this.changed.fire();
  }

  private onLine(connection: FakeConnection, line: ReceivedLine): void {
    this.received.push(line);
    this.changed.fire();
    if (this.silent || this.halted) return;
    const autoReply = line.execute === undefined ? undefined : this.autoReplies.get(line.execute);
    if (autoReply !== undefined) {
      connection.write(this.render(autoReply, line));
    } else if (this.failures.length > 0) {
      this.answerWithError(connection, line, `the script has already failed: ${this.failures[0]}`);
    } else {
      this.stateOf(connection).pending.push(line);
    }
  }

  /** With no step left, queued lines and unaccepted connections are unexpected. */
  private rejectLeftovers(): void {
    for (const [, state] of this.scriptState) {
      for (let line = state.pending.shift(); line !== undefined; line = state.pending.shift()) {
        this.rejectLine(line, `unexpected input on connection #${line.connection}: ${quote(line.text)}, the script expected nothing more`);
      }
    }
    for (let connection = this.unclaimed.shift(); connection !== undefined; connection = this.unclaimed.shift()) {
      this.fail(`unexpected connection #${connection.index}: the script accepts no more connections`);
      connection.socket.destroy();
    }
  }

  private rejectLine(line: ReceivedLine, failure: string): void {
    this.fail(failure);
    const connection = this.connections[line.connection];
    if (connection !== undefined) this.answerWithError(connection, line, failure);
  }

  /** A JSON command gets a GenericError, so the client under test does not hang waiting. */
  private answerWithError(connection: FakeConnection, line: ReceivedLine, desc: string): void {
    if (!isPlainObject(line.json)) return;
    connection.write(this.render({ error: { class: 'GenericError', desc: `fake peer: ${desc}` } }, line));
  }

  private fail(failure: string): void {
    this.failures.push(failure);
    this.changed.fire();
  }

  private currentConnection(): FakeConnection {
    if (this.current === undefined) throw new Error('no connection has been accepted');
    return this.current;
  }

  private stateOf(connection: FakeConnection): ConnectionScriptState {
    const state = this.scriptState.get(connection);
    if (state === undefined) throw new Error(`connection #${connection.index} is unknown`);
    return state;
  }

  /** The wire form of an outgoing value; with `command`, a function reply gets it and a JSON object echoes its id. */
  private render(outgoing: Reply, command?: ReceivedLine): string | Uint8Array {
    let value: Outgoing;
    if (typeof outgoing === 'function') {
      if (command === undefined) throw new Error('a reply function needs a command');
      value = outgoing(command);
    } else {
      value = outgoing;
    }
    if (typeof value === 'string' || value instanceof Uint8Array) return value;
    return formatLikeQemu(command === undefined ? value : withEchoedId(value, command)) + this.lineEnd;
  }

  private scriptFinished(): boolean {
    return (
      this.nextStep >= this.steps.length &&
      this.unclaimed.length === 0 &&
      [...this.scriptState.values()].every((state) => state.pending.length === 0)
    );
  }

  private report(headline: string): string {
    const lines = [headline];
    for (const failure of this.failures) lines.push(`  - ${failure}`);
    for (const step of this.steps.slice(this.nextStep)) lines.push(`  - never completed: ${describeStep(step)}`);
    for (const connection of this.unclaimed) lines.push(`  - connection #${connection.index} was never accepted`);
    for (const [, state] of this.scriptState) {
      for (const line of state.pending) lines.push(`  - not yet handled: ${quote(line.text)} on connection #${line.connection}`);
    }
    return lines.join('\n');
  }
}

// ---- internals -----------------------------------------------------------------------------

type StepWithoutSite =
  | { kind: 'accept'; greeting: Outgoing | undefined }
  | { kind: 'expect'; matcher: CommandMatcher; description: string }
  | { kind: 'reply'; reply: Reply }
  | { kind: 'send'; produce: () => Outgoing }
  | { kind: 'flood'; count: number; message: Outgoing | ((index: number) => Outgoing) }
  | { kind: 'disconnect' }
  | { kind: 'expectClose' }
  | { kind: 'waitForCommand'; matcher: CommandMatcher; description: string }
  | { kind: 'waitUntil'; condition: Promise<unknown> | (() => Promise<unknown>); description: string }
  | { kind: 'silence' };

/** A step plus where the spec scripted it, for failure messages. */
type Step = StepWithoutSite & { site: string };

interface ConnectionScriptState {
  /** Lines waiting for the script's next expect(). */
  pending: ReceivedLine[];
  /** How far waitForCommand() has looked through the connection's lines. */
  observedLines: number;
}

/** Thrown inside the runner when it must stop without adding a failure (already recorded, or closed). */
class ScriptStopped extends Error {}

const CONNECTION_CLOSED = Symbol('connection closed');

/** Lets any number of waiters sleep until the next change of anything. */
class ChangeSignal {
  private waiters: (() => void)[] = [];

  next(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  fire(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }
}

function withEchoedId(value: Outgoing, command: ReceivedLine): Outgoing {
  if (command.echoedId === undefined || !isPlainObject(value) || 'id' in value) return value;
  const id = rawJson(command.echoedId);
  return 'error' in value ? { id, ...value } : { ...value, id };
}

function lineMatches(matcher: CommandMatcher, line: ReceivedLine): boolean {
  if (typeof matcher === 'string') return line.execute === matcher;
  if (typeof matcher === 'function') return matcher(line);
  if (matcher.execute !== undefined && line.execute !== matcher.execute) return false;
  if (matcher.oob !== undefined && line.oob !== matcher.oob) return false;
  if ('arguments' in matcher && !isDeepStrictEqual(line.arguments, matcher.arguments)) return false;
  if (matcher.text !== undefined) {
    const textMatches = typeof matcher.text === 'string' ? line.text === matcher.text : matcher.text.test(line.text);
    if (!textMatches) return false;
  }
  return matcher.where === undefined || matcher.where(line);
}

function describeMatcher(matcher: CommandMatcher): string {
  if (typeof matcher === 'string') return quote(matcher);
  if (typeof matcher === 'function') return `a line satisfying ${matcher.name || 'a predicate'}`;
  const parts: string[] = [];
  if (matcher.execute !== undefined) parts.push(quote(matcher.execute));
  if (matcher.oob !== undefined) parts.push(matcher.oob ? 'as exec-oob' : 'in-band');
  if ('arguments' in matcher) parts.push(`with arguments ${JSON.stringify(matcher.arguments)}`);
  if (matcher.text !== undefined) parts.push(`text ${typeof matcher.text === 'string' ? quote(matcher.text) : String(matcher.text)}`);
  if (matcher.where !== undefined) parts.push(`satisfying ${matcher.where.name || 'a predicate'}`);
  return parts.join(' ') || 'any line';
}

function describeStep(step: Step): string {
  const what = ((): string => {
    switch (step.kind) {
      case 'expect':
        return `expect ${step.description}`;
      case 'waitForCommand':
        return `waitForCommand ${step.description}`;
      case 'waitUntil':
        return `waitUntil ${step.description}`;
      case 'flood':
        return `flood of ${step.count}`;
      default:
        return step.kind;
    }
  })();
  return `${what} (scripted at ${step.site})`;
}

/** The spec file location that called into this module, relative to the working dir. */
function callSite(): string {
  const frames = (new Error().stack ?? '').split('\n').slice(1);
  const caller = frames.find((frame) => !/[\\/]helpers[\\/]fake-peer\.[jt]s/.test(frame));
  const location = caller?.match(/\(?(?:file:\/\/)?([^()\s]+:\d+:\d+)\)?\s*$/)?.[1];
  return location === undefined ? 'an unknown place' : relative(process.cwd(), location);
}

function toBuffer(wire: string | Uint8Array): Buffer {
  return typeof wire === 'string' ? Buffer.from(wire) : Buffer.from(wire.buffer, wire.byteOffset, wire.byteLength);
}

function quote(text: string): string {
  const shown = text.length > 200 ? `${text.slice(0, 200)}...` : text;
  return JSON.stringify(shown);
}
