/**
 * Generators of what flows over a monitor socket, from the grammar and
 * from captured traffic: QEMU's side of QMP (greeting, replies, events),
 * a client's side (commands, in QEMU's lenient JSON: single quotes,
 * escapes, odd spacing), and HMP command lines.
 */
import fc from 'fast-check';
import { corpusBytes, corpusLines, mutate, mutation, tokens } from './support.js';

/**
 * The messages QEMU sent in the captured session (corpus/qmp-server.log),
 * without their CRLF; the three longest replies (6 to 44 KiB) are left out:
 * fed byte by byte they would take most of the run and find nothing the
 * shorter ones do not.
 */
export const capturedServerMessages: string[] = corpusBytes('qmp-server.log')
  .toString('utf8')
  .split('\r\n')
  .filter((line) => line !== '' && line.length <= 4400);

/** Every command of the captured session (corpus/qmp-client.log). */
export const capturedClientCommands: string[] = corpusLines('qmp-client.log');

/** The captured greeting. */
export const capturedGreeting = capturedServerMessages[0]!;

/** QEMU's compact output: `, ` between members and items, `: ` after keys. */
export function qemuJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(qemuJson).join(', ')}]`;
  return `{${Object.entries(value as Record<string, unknown>)
    .map(([key, member]) => `${JSON.stringify(key)}: ${qemuJson(member)}`)
    .join(', ')}}`;
}

/** QEMU's `pretty=on` output of an object. */
export function prettyJson(value: unknown): string {
  return JSON.stringify(value, null, 4);
}

const names = fc.constantFrom('query-status', 'query-version', 'stop', 'cont', 'qom-get', 'qom-list', 'human-monitor-command', 'quit', 'x', 'query-x', 'qmp_capabilities', '');
const eventNames = fc.constantFrom('STOP', 'RESUME', 'SHUTDOWN', 'RESET', 'BLOCK_JOB_COMPLETED', 'DEVICE_DELETED', 'X');
const text = fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 8 }), fc.constantFrom('', 'inf', '\\', '"', '{', '}', '\r\n'));
const smallValue = fc.jsonValue({ maxDepth: 3 });

/** One message as QEMU would print it (a JSON object), generated from the grammar. */
export const generatedServerMessage: fc.Arbitrary<string> = fc.oneof(
  fc.record({ value: smallValue, id: fc.option(fc.oneof(fc.nat(), text), { nil: undefined }) }).map(({ value, id }) => qemuJson(id === undefined ? { return: value } : { return: value, id })),
  fc.record({ cls: fc.constantFrom('GenericError', 'CommandNotFound', 'DeviceNotFound'), desc: text }).map(({ cls, desc }) => qemuJson({ error: { class: cls, desc } })),
  fc.record({ event: eventNames, data: fc.option(fc.dictionary(fc.string({ maxLength: 6 }), smallValue, { maxKeys: 3 }), { nil: undefined }), seconds: fc.nat(), microseconds: fc.nat({ max: 999_999 }) }).map(
    ({ event, data, seconds, microseconds }) => qemuJson(data === undefined ? { event, timestamp: { seconds, microseconds } } : { event, data, timestamp: { seconds, microseconds } }),
  ),
  fc.dictionary(fc.string({ maxLength: 6 }), smallValue, { maxKeys: 4 }).map(qemuJson),
);

/** A captured or generated message from QEMU, compact or pretty. */
export const serverMessage: fc.Arbitrary<string> = fc
  .tuple(fc.oneof(fc.constantFrom(...capturedServerMessages), generatedServerMessage), fc.boolean())
  .map(([message, pretty]) => {
    if (!pretty) return message;
    try {
      return prettyJson(JSON.parse(message));
    } catch {
      return message;
    }
  });

/** Bytes and tokens that matter to a JSON framer or lexer. */
export const JSON_TOKENS = tokens('{', '}', '[', ']', '"', "'", '\\', ':', ',', '\r\n', '\n', '\r', '\xff', '\xfe', '\x00', '\\u0000', '\\ud800', '1e999', '-', 'true', 'nul', '{"return": ', '{"execute":"query-status"}');

/** A stream of QEMU's messages with line ends (CRLF or LF), some of them mutated. */
export const serverStream: fc.Arbitrary<Buffer> = fc
  .tuple(
    fc.array(fc.tuple(serverMessage, fc.constantFrom('\r\n', '\n', '', ' \r\n')), { minLength: 1, maxLength: 8 }),
    fc.array(mutation(JSON_TOKENS), { maxLength: 4 }),
  )
  .map(([messages, mutations]) => mutate(Buffer.from(messages.map(([message, end]) => message + end).join(''), 'utf8'), mutations));

const idValue = fc.oneof(fc.nat(), fc.string({ maxLength: 6 }), fc.constant(null), fc.constant(9007199254740993n).map((n) => n.toString()));

/** A client command from the grammar: execute or exec-oob, maybe arguments, maybe an id, members in any order. */
export const generatedCommand: fc.Arbitrary<string> = fc
  .record({
    key: fc.constantFrom('execute', 'execute', 'execute', 'exec-oob'),
    name: names,
    args: fc.option(fc.oneof(fc.dictionary(fc.string({ maxLength: 6 }), smallValue, { maxKeys: 3 }), smallValue), { nil: undefined }),
    id: fc.option(idValue, { nil: undefined }),
    control: fc.option(fc.constant({ 'run-oob': true }), { nil: undefined }),
    swap: fc.boolean(),
  })
  .map(({ key, name, args, id, control, swap }) => {
    const members: string[] = [`${JSON.stringify(key)}:${JSON.stringify(name)}`];
    if (args !== undefined) members.push(`"arguments":${JSON.stringify(args)}`);
    if (id !== undefined) members.push(`"id":${typeof id === 'string' && /^\d+$/.test(id) ? id : JSON.stringify(id)}`);
    if (control !== undefined) members.push(`"control":${JSON.stringify(control)}`);
    if (swap) members.reverse();
    return `{${members.join(',')}}`;
  });

/** QEMU's lexer takes single-quoted strings too; some commands are written that way. */
function singleQuoted(json: string): string {
  return json.replace(/"/g, "'");
}

/** A client message: captured or generated, maybe single-quoted, maybe mutated. */
export const clientMessage: fc.Arbitrary<Buffer> = fc
  .tuple(
    fc.oneof(fc.constantFrom(...capturedClientCommands), generatedCommand, generatedCommand.map(singleQuoted)),
    fc.constantFrom('\n', '\r\n', '', ' '),
    fc.oneof({ weight: 2, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(mutation(JSON_TOKENS), { minLength: 1, maxLength: 3 }) }),
  )
  .map(([message, end, mutations]) => mutate(Buffer.from(message + end, 'utf8'), mutations));

const hmpWords = fc.constantFrom('info', 'status', 'help', 'stop', 'cont', 'version', 'mtree', 'qtree', 'x', '/8x', '0x0', 'device_add', 'nope', '?', '-f', '"', "'", '\\', '\t');

/** One HMP command line from the grammar (no line end). */
export const hmpLine: fc.Arbitrary<string> = fc.oneof(
  fc.array(hmpWords, { maxLength: 4 }).map((words) => words.join(' ')),
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.constantFrom('', ' ', '   \t', 'info status', 'help info'),
);

/** A client's HMP input: lines with any of the three line ends, some mutated bytes, sometimes an unfinished last line. */
export const hmpInput: fc.Arbitrary<Buffer> = fc
  .tuple(
    fc.array(fc.tuple(hmpLine, fc.constantFrom('\n', '\r', '\r\n', '\n\r')), { minLength: 1, maxLength: 16 }),
    fc.option(hmpLine, { nil: undefined }),
    fc.array(mutation(tokens('\r', '\n', '\r\n', '\xff', '\x00', '\x1b[A')), { maxLength: 2 }),
  )
  .map(([lines, unfinished, mutations]) => mutate(Buffer.from(lines.map(([line, end]) => line + end).join('') + (unfinished ?? ''), 'utf8'), mutations));
