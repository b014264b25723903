/**
 * Arguments for the differential check (spec/qapi/differential.spec.ts),
 * generated from QEMU's own schema: one valid object per command (required
 * members only) and another with every optional member too, then
 * mutations of them, each with one mistake: a required member missing, a
 * member that does not exist, a member of the wrong JSON type, an enum
 * value QEMU does not have, or a union's tag moved to another branch.
 *
 * Every command listed here is harmless on a guest-less QEMU whatever the
 * arguments: none opens files, sockets or processes, or ends QEMU. Unions
 * that could reach such things are held to the branches in UNION_CASES.
 */
import type { QapiMember, QapiObject, QapiSchema } from '../../lib/qapi/model.js';

export const SAFE_COMMANDS: readonly string[] = [
  'balloon', 'block-dirty-bitmap-add', 'block-dirty-bitmap-clear', 'block-dirty-bitmap-disable', 'block-dirty-bitmap-enable',
  'block-dirty-bitmap-merge', 'block-dirty-bitmap-remove', 'block-export-del', 'block-job-cancel', 'block-job-complete',
  'block-job-dismiss', 'block-job-finalize', 'block-job-pause', 'block-job-resume', 'block-job-set-speed',
  'block-latency-histogram-set', 'block-set-write-threshold', 'block_resize', 'block_set_io_throttle', 'blockdev-add',
  'blockdev-close-tray', 'blockdev-del', 'blockdev-open-tray', 'blockdev-remove-medium', 'blockdev-snapshot-delete-internal-sync',
  'cancel-vcpu-dirty-limit', 'change-vnc-password', 'chardev-remove', 'chardev-send-break', 'client_migrate_info', 'closefd', 'cont',
  'device-list-properties', 'device_add', 'device_del', 'display-reload', 'display-update', 'eject', 'expire_password', 'inject-nmi',
  'input-send-event', 'job-cancel', 'job-complete', 'job-dismiss', 'job-finalize', 'job-pause', 'job-resume', 'migrate-continue',
  'migrate-pause', 'migrate-set-capabilities', 'migrate-start-postcopy', 'migrate_cancel', 'nbd-server-stop', 'netdev_del',
  'object-add', 'object-del', 'qom-get', 'qom-list', 'qom-list-properties', 'qom-list-types', 'qom-set',
  'remove-fd', 'replay-break', 'replay-delete-break', 'replay-seek', 'ringbuf-read', 'ringbuf-write', 'rtc-reset-reinjection',
  'send-key', 'set-action', 'set-vcpu-dirty-limit', 'set_link', 'set_password', 'stop', 'system_wakeup', 'trace-event-get-state',
  'trace-event-set-state', 'watchdog-set-action', 'x-blockdev-set-iothread', 'x-colo-lost-heartbeat',
  'x-debug-block-dirty-bitmap-sha256', 'x-debug-query-block-graph', 'yank',
];

/** Commands named query-* and x-query-* only read state. */
export function safeCommands(schema: QapiSchema): string[] {
  const queries = [...schema.commands.keys()].filter((name) => name.startsWith('query-') || name.startsWith('x-query-'));
  return [...queries, ...SAFE_COMMANDS.filter((name) => schema.commands.has(name))].sort();
}

/** Union branches the generator may use, per command: the rest could open files or connect somewhere. */
const UNION_CASES: Record<string, readonly string[]> = {
  'blockdev-add': ['null-co', 'null-aio', 'raw', 'file', 'qcow2'],
  'object-add': ['throttle-group', 'iothread', 'authz-simple', 'secret'],
};

export type MutationKind = 'valid' | 'missing' | 'unexpected' | 'wrong type' | 'wrong enum value' | 'wrong union branch';

export interface GeneratedCase {
  command: string;
  kind: MutationKind;
  /** What was changed, for the report. */
  where: string;
  args: Record<string, unknown>;
}

type Json = unknown;

const MAX_DEPTH = 6;

class Generator {
  constructor(
    private readonly schema: QapiSchema,
    private readonly command: string,
  ) {}

  value(id: string, full: boolean, depth: number): Json {
    const type = this.schema.type(id);
    switch (type.kind) {
      case 'builtin':
        return { string: 'qmpx-x', int: 1, number: 1.5, boolean: false, null: null, value: 'qmpx-any' }[type.jsonType] ?? null;
      case 'enum':
        return type.values[0];
      case 'array':
        return [this.value(type.element, full, depth + 1)];
      case 'alternate': {
        // The simplest branch: a scalar when there is one, so recursive types end.
        const scalar = type.members.find((member) => this.schema.type(member).kind !== 'object');
        return this.value(scalar ?? type.members[0]!, full, depth + 1);
      }
      case 'object':
        return this.object(type, this.cases(type)[0], full, depth);
    }
  }

  cases(union: QapiObject): (string | undefined)[] {
    if (union.tag === undefined) return [undefined];
    const allowed = UNION_CASES[this.command];
    const values = this.schema.tagValues(union);
    return allowed === undefined ? [...values] : values.filter((value) => allowed.includes(value));
  }

  object(type: QapiObject, tagValue: string | undefined, full: boolean, depth: number): Record<string, Json> {
    const members = tagValue === undefined ? type.members : this.schema.membersFor(type, tagValue);
    const result: Record<string, Json> = {};
    for (const member of members) {
      if (member.optional && (!full || depth >= MAX_DEPTH)) continue;
      result[member.name] = member.name === type.tag ? tagValue : this.value(member.type, full, depth + 1);
    }
    return result;
  }

  /** A value of a JSON type the member's type does not take, or undefined when it takes every type. */
  wrongType(member: QapiMember): Json {
    const type = this.schema.type(member.type);
    if (type.kind === 'builtin') return type.jsonType === 'value' ? undefined : type.jsonType === 'string' ? 12345 : 'qmpx-wrong';
    if (type.kind === 'enum') return 7;
    if (type.kind === 'alternate') return type.members.some((id) => this.schema.type(id).kind === 'array') ? { 'qmpx-wrong': 1 } : ['qmpx-wrong'];
    return 'qmpx-wrong';
  }
}

/** Whether null is a wrong value for the member (it is right for `any`, `null` and alternates with a null branch). */
function takesNoNull(schema: QapiSchema, member: QapiMember): boolean {
  const type = schema.type(member.type);
  if (type.kind === 'builtin') return type.jsonType !== 'value' && type.jsonType !== 'null';
  if (type.kind === 'alternate') return !type.members.some((id) => ['null', 'any'].includes(id));
  return true;
}

export function generateCases(schema: QapiSchema, command: string): GeneratedCase[] {
  const info = schema.commands.get(command)!;
  const argType = schema.type(info.argType);
  if (argType.kind !== 'object') return [];
  const generator = new Generator(schema, command);
  const cases: GeneratedCase[] = [];
  for (const tagValue of generator.cases(argType).slice(0, 5)) {
    const minimal = generator.object(argType, tagValue, false, 0);
    const full = generator.object(argType, tagValue, true, 0);
    const label = tagValue === undefined ? '' : `${argType.tag}=${tagValue}`;
    cases.push({ command, kind: 'valid', where: `required members ${label}`, args: minimal });
    if (JSON.stringify(full) !== JSON.stringify(minimal)) cases.push({ command, kind: 'valid', where: `every member ${label}`, args: full });
    const members = tagValue === undefined ? argType.members : schema.membersFor(argType, tagValue);
    for (const member of members.filter((candidate) => !candidate.optional).slice(0, 6)) {
      const args = { ...full };
      delete args[member.name];
      cases.push({ command, kind: 'missing', where: member.name, args });
    }
    cases.push({ command, kind: 'unexpected', where: 'qmpx-bogus', args: { ...minimal, 'qmpx-bogus': 1 } });
    const nested = members.find((member) => typeof full[member.name] === 'object' && full[member.name] !== null && !Array.isArray(full[member.name]));
    if (nested !== undefined) {
      const inner = full[nested.name] as Record<string, unknown>;
      cases.push({ command, kind: 'unexpected', where: `${nested.name}.qmpx-bogus`, args: { ...full, [nested.name]: { ...inner, 'qmpx-bogus': 1 } } });
      const nestedType = schema.type(nested.type);
      const innerMembers = nestedType.kind === 'object' ? nestedType.members.filter((member) => member.name in inner && member.name !== nestedType.tag) : [];
      for (const member of innerMembers.slice(0, 3)) {
        const wrong = generator.wrongType(member);
        if (wrong !== undefined) cases.push({ command, kind: 'wrong type', where: `${nested.name}.${member.name}`, args: { ...full, [nested.name]: { ...inner, [member.name]: wrong } } });
      }
    }
    for (const member of members.filter((candidate) => candidate.name !== argType.tag).slice(0, 8)) {
      const wrong = generator.wrongType(member);
      if (wrong !== undefined) cases.push({ command, kind: 'wrong type', where: member.name, args: { ...full, [member.name]: wrong } });
    }
    for (const member of members.filter((candidate) => candidate.name !== argType.tag && takesNoNull(schema, candidate)).slice(0, 4)) {
      cases.push({ command, kind: 'wrong type', where: `${member.name}=null`, args: { ...full, [member.name]: null } });
    }
    for (const member of members.filter((candidate) => schema.type(candidate.type).kind === 'enum').slice(0, 4)) {
      cases.push({ command, kind: 'wrong enum value', where: member.name, args: { ...full, [member.name]: 'qmpx-no-such-value' } });
    }
    if (argType.tag !== undefined) {
      for (const other of generator.cases(argType).filter((value) => value !== tagValue).slice(0, 2)) {
        cases.push({ command, kind: 'wrong union branch', where: `${argType.tag}=${other} with ${label}`, args: { ...full, [argType.tag]: other } });
      }
    }
  }
  return cases;
}
