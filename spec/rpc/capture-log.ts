/**
 * Reader of the libvirt 9.0 man-in-the-middle captures copied into
 * spec/rpc/vectors/.
 *
 * Format: `##### ...` section titles, event lines (`TS cN CONNECT`, `... EOF`,
 * fd-passing notes), and per message one decoded line
 *
 *   TS cN C->S|S->C PROGRAM proc=N NAME TYPE serial=N STATUS [annotation]
 *
 * plus one `      raw HEX` line with the message's bytes. The raw line is
 * NOT always right under its decoded line: the two directions were logged by
 * concurrent writers, so a decoded line and its raw line can be separated by
 * the other direction's lines (up to 5 lines apart, e.g. mitm-uuid, where a
 * REPLY's raw line sits under a CALL's decoded line). Raw lines are therefore
 * paired with the earliest waiting decoded line whose header words match,
 * a caller-supplied tie-breaker choosing among equal headers (two events that
 * differ only in callbackID, mitm-ev).
 */
import { readFileSync } from 'node:fs';
import { MessageStatus, MessageType, RpcProgram } from '../../lib/rpc/protocol.js';

/** The capture files, as copied (names kept). */
export const CAPTURE_LOGS = [
  'mitm-ev.log',
  'mitm-fds.log',
  'mitm-py.log',
  'mitm-py2.log',
  'mitm-py3.log',
  'mitm-qmpproxy.log',
  'mitm-raw.log',
  'mitm-uuid.log',
] as const;

const VECTORS_DIR = new URL('../../../spec/rpc/vectors/', import.meta.url);

export interface CapturedMessage {
  file: string;
  /** 1-based line of the decoded line, and of the raw line paired with it. */
  line: number;
  rawLine: number;
  connection: string;
  direction: 'C->S' | 'S->C';
  /** Header words as the decoded line states them. */
  prog: number;
  proc: number;
  /** The capture tool's name for the procedure, `?` where it had none. */
  name: string;
  /** The TYPE column verbatim, e.g. `CALL_WITH_FDS(nfds=1)`. */
  typeLabel: string;
  type: number;
  /** The fd count in the TYPE column, or null when it shows none. */
  labelledFdCount: number | null;
  serial: number;
  status: number;
  /** The capture tool's rendering of the body: '' (empty), JSON, or `{"hex": ...}`. */
  annotation: string;
  raw: Buffer;
}

type DecodedLine = Omit<CapturedMessage, 'raw' | 'rawLine'>;

const DECODED_LINE =
  /^(\d+\.\d+) (c\d+) (C->S|S->C) (REMOTE|QEMU|KEEPALIVE)\s+proc=(\d+)\s+(\S+)\s+(\S+)\s+serial=(\d+)\s+(OK|ERROR|CONTINUE)\s?(.*)$/;
const RAW_LINE = /^\s+raw ([0-9a-f]+)$/;
const TYPE_LABEL = /^([A-Z_]+)(?:\(nfds=(\d+)\))?$/;

function typeNumber(label: string): number {
  const value = (MessageType as Record<string, number>)[label];
  if (value === undefined) throw new Error(`unknown message type label ${label}`);
  return value;
}

function parseDecodedLine(file: string, line: number, match: RegExpMatchArray): DecodedLine {
  const [, , connection, direction, program, proc, name, typeLabel, serial, status, annotation] = match;
  const typeMatch = TYPE_LABEL.exec(typeLabel!);
  if (!typeMatch) throw new Error(`${file}:${line}: bad type label ${typeLabel}`);
  return {
    file,
    line,
    connection: connection!,
    direction: direction as 'C->S' | 'S->C',
    prog: RpcProgram[program as keyof typeof RpcProgram],
    proc: Number(proc),
    name: name!,
    typeLabel: typeLabel!,
    type: typeNumber(typeMatch[1]!),
    labelledFdCount: typeMatch[2] === undefined ? null : Number(typeMatch[2]),
    serial: Number(serial),
    status: MessageStatus[status as keyof typeof MessageStatus],
    annotation: annotation!.trim(),
  };
}

function headerMatches(line: DecodedLine, raw: Buffer): boolean {
  return (
    raw.length >= 28 &&
    raw.readUInt32BE(4) === line.prog &&
    raw.readInt32BE(12) === line.proc &&
    raw.readInt32BE(16) === line.type &&
    raw.readUInt32BE(20) === line.serial &&
    raw.readInt32BE(24) === line.status
  );
}

/**
 * Every message of one capture file, in decoded-line order, each with the
 * raw bytes paired to it. `sameMessage` breaks ties between waiting lines
 * whose header words all match the raw bytes. Throws if a raw line matches
 * no waiting line or a decoded line is left without raw bytes.
 */
export function readCaptureLog(file: string, sameMessage: (line: DecodedLine, raw: Buffer) => boolean): CapturedMessage[] {
  const lines = readFileSync(new URL(file, VECTORS_DIR), 'utf8').split('\n');
  const waiting: DecodedLine[] = [];
  const paired: CapturedMessage[] = [];
  lines.forEach((text, index) => {
    const decoded = DECODED_LINE.exec(text);
    if (decoded) {
      waiting.push(parseDecodedLine(file, index + 1, decoded));
      return;
    }
    const rawMatch = RAW_LINE.exec(text);
    if (!rawMatch) return;
    const raw = Buffer.from(rawMatch[1]!, 'hex');
    const candidates = waiting.filter((line) => headerMatches(line, raw));
    const chosen = candidates.length > 1 ? candidates.find((line) => sameMessage(line, raw)) : candidates[0];
    if (!chosen) throw new Error(`${file}:${index + 1}: raw bytes match no waiting decoded line`);
    waiting.splice(waiting.indexOf(chosen), 1);
    paired.push({ ...chosen, raw, rawLine: index + 1 });
  });
  if (waiting.length > 0) throw new Error(`${file}: decoded lines without raw bytes: ${waiting.map((line) => line.line).join(', ')}`);
  return paired.sort((a, b) => a.line - b.line);
}

/** Every raw message of a capture file in file order, without pairing (for fuzz seeds). */
export function readRawMessages(file: string): Buffer[] {
  const text = readFileSync(new URL(file, VECTORS_DIR), 'utf8');
  return [...text.matchAll(/^\s+raw ([0-9a-f]+)$/gm)].map((match) => Buffer.from(match[1]!, 'hex'));
}
