/**
 * QEMU's rules for what a QMP input object must be, reproduced so that a
 * pass-through caller's non-command gets QEMU's exact answer without being
 * written upstream (qapi/qmp-dispatch.c `qmp_dispatch_check_obj`, 7.2,
 * checked against the real QEMU with a raw socket: spec/passthrough/qemu-input.spec.ts).
 *
 * QEMU checks the members in its QDict's iteration order, not in the order
 * written: bucket `tdb_hash(key) % 512` ascending, and within a bucket the
 * member parsed last first. So `{"foo":1,"bar":2}` is refused for `'bar'`,
 * and `execute` with `exec-oob` gives `'execute' clashes with 'exec-oob'`.
 * The error echoes the caller's `id` only when the input was an object that
 * QEMU could parse; parse and limit errors carry no id.
 */
import type { ScannedJson, TopLevelMember } from './json-scan.js';

const QDICT_BUCKET_MAX = 512;

/** What QEMU would do with a parsed input. */
export type InputVerdict =
  /** QEMU refuses it before dispatch: `desc` under GenericError, echoing `idMember` if set. */
  | { kind: 'refused'; desc: string; idMember: TopLevelMember | undefined }
  /** A command QEMU will dispatch: `oob` when it came as `exec-oob` (and without `execute`). */
  | {
      kind: 'command';
      name: string;
      oob: boolean;
      argumentsMember: TopLevelMember | undefined;
      idMember: TopLevelMember | undefined;
    };

/**
 * Judges scanned input as QEMU would. `allowOob` is whether OOB was
 * negotiated: without it `exec-oob` is just an unexpected member.
 */
export function judgeInput(scanned: ScannedJson, allowOob: boolean): InputVerdict {
  if (scanned.qemuError !== null) return { kind: 'refused', desc: scanned.qemuError, idMember: undefined };
  if (scanned.kind !== 'object') return { kind: 'refused', desc: 'QMP input must be a JSON object', idMember: undefined };
  const idMember = scanned.members.find((member) => member.key === 'id');
  const refuse = (desc: string): InputVerdict => ({ kind: 'refused', desc, idMember });
  let execKey: TopLevelMember | undefined;
  for (const member of qdictOrder(scanned.members)) {
    const key = member.key;
    if (key === 'execute' || (key === 'exec-oob' && allowOob)) {
      if (member.kind !== 'string') return refuse(`QMP input member '${key}' must be a string`);
      if (execKey !== undefined) return refuse(`QMP input member '${key}' clashes with '${execKey.key}'`);
      execKey = member;
    } else if (key === 'arguments') {
      if (member.kind !== 'object') return refuse("QMP input member 'arguments' must be an object");
    } else if (key !== 'id') {
      return refuse(`QMP input member '${key}' is unexpected`);
    }
  }
  if (execKey === undefined) return refuse("QMP input lacks member 'execute'");
  return {
    kind: 'command',
    name: execKey.stringValue!,
    oob: execKey.key === 'exec-oob',
    argumentsMember: scanned.members.find((member) => member.key === 'arguments'),
    idMember,
  };
}

/** The members in the order QEMU's QDict iterates them. */
export function qdictOrder<T extends { key: string }>(members: readonly T[]): T[] {
  return members
    .map((member, index) => ({ member, index, bucket: tdbHash(member.key) % QDICT_BUCKET_MAX }))
    .sort((a, b) => a.bucket - b.bucket || b.index - a.index)
    .map(({ member }) => member);
}

/**
 * QEMU's qdict hash (`tdb_hash`, from gdbm via tdb) over the key's bytes in
 * QEMU's modified UTF-8, where U+0000 is the two bytes C0 80.
 */
export function tdbHash(key: string): number {
  const bytes = modifiedUtf8(key);
  let value = Math.imul(0x238f13af, bytes.length) >>> 0;
  for (let index = 0; index < bytes.length; index++) {
    value = (value + (bytes[index]! << ((index * 5) % 24))) >>> 0;
  }
  return (Math.imul(1103515243, value) + 12345) >>> 0;
}

function modifiedUtf8(text: string): Uint8Array {
  const utf8 = Buffer.from(text, 'utf8');
  if (!utf8.includes(0)) return utf8;
  const bytes: number[] = [];
  for (const byte of utf8) {
    if (byte === 0) bytes.push(0xc0, 0x80);
    else bytes.push(byte);
  }
  return Uint8Array.from(bytes);
}
