/**
 * QEMU's rules for what a QMP input object must be before a command runs
 * (qapi/qmp-dispatch.c `qmp_dispatch_check_obj`, 7.2, checked against the
 * real QEMU with a raw socket: spec/qemu-json/dispatch-check.spec.ts), so
 * that input QEMU would refuse gets QEMU's exact answer without being
 * written upstream.
 *
 * Order of checks, as in QEMU: a streamer or parser error first (no id);
 * not an object → `QMP input must be a JSON object` (no id); then the
 * members, visited in QDict order (qdict-order.ts), the first bad one
 * reported with the id: `{"foo":1,"bar":2}` is refused for `'bar'`, and
 * `execute` with `exec-oob` gives `'execute' clashes with 'exec-oob'`.
 */
import { qdictOrder } from './qdict-order.js';
import type { JsonValueKind } from './tokens.js';

/** A member of the input object, however it was read. */
export interface InputMember {
  readonly key: string;
  readonly kind: JsonValueKind;
  /** The decoded value, for string members. */
  readonly stringValue?: string | undefined;
}

/** Input read as JSON: its kind, its members in document order ([] for other kinds), and QEMU's first complaint while reading it. */
export interface ReadInput<M extends InputMember> {
  readonly kind: JsonValueKind;
  readonly members: readonly M[];
  readonly qemuError?: string | null;
}

/** What QEMU would do with a parsed input. */
export type InputVerdict<M extends InputMember> =
  /** QEMU refuses it before dispatch: `desc` under GenericError, echoing `idMember` if set. */
  | { kind: 'refused'; desc: string; idMember: M | undefined }
  /** A command QEMU will dispatch: `oob` when it came as `exec-oob` (and without `execute`). */
  | { kind: 'command'; name: string; oob: boolean; argumentsMember: M | undefined; idMember: M | undefined };

/**
 * Judges read input as QEMU would. `allowOob` is whether OOB was
 * negotiated: without it `exec-oob` is just an unexpected member.
 */
export function judgeInput<M extends InputMember>(input: ReadInput<M>, allowOob: boolean): InputVerdict<M> {
  if (input.qemuError !== undefined && input.qemuError !== null) return { kind: 'refused', desc: input.qemuError, idMember: undefined };
  if (input.kind !== 'object') return { kind: 'refused', desc: 'QMP input must be a JSON object', idMember: undefined };
  const idMember = input.members.find((member) => member.key === 'id');
  const refuse = (desc: string): InputVerdict<M> => ({ kind: 'refused', desc, idMember });
  let execKey: M | undefined;
  for (const member of qdictOrder(input.members)) {
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
    argumentsMember: input.members.find((member) => member.key === 'arguments'),
    idMember,
  };
}
