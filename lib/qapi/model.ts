/**
 * The QEMU schema as `query-qmp-schema` returns it (SchemaInfo), read into
 * one model: commands, events and the types they use.
 *
 * Introspection hides QEMU's own type names: every type but the builtins is
 * called by a number ("49"), arrays by their element's ("[49]"). The model
 * keeps those ids as keys and gives each type a readable name derived from
 * where it is used (lib/qapi/names.ts).
 */
import { QapiSchemaError } from './errors.js';
import { assignReadableNames } from './names.js';
import type { PolicyFeature, QapiCommand, QapiEnum, QapiEvent, QapiMember, QapiObject, QapiType } from './schema-types.js';

export type {
  PolicyFeature,
  QapiAlternate,
  QapiArray,
  QapiBuiltin,
  QapiCommand,
  QapiEnum,
  QapiEvent,
  QapiMember,
  QapiObject,
  QapiType,
  QapiVariant,
} from './schema-types.js';

export class QapiSchema {
  /** Readable names by type id; builtins keep theirs. */
  readonly names: ReadonlyMap<string, string>;

  constructor(
    readonly types: ReadonlyMap<string, QapiType>,
    readonly commands: ReadonlyMap<string, QapiCommand>,
    readonly events: ReadonlyMap<string, QapiEvent>,
  ) {
    this.names = assignReadableNames(this);
  }

  /** The type with this id; throws QapiSchemaError if the schema does not define it. */
  type(id: string): QapiType {
    const found = this.types.get(id);
    if (found === undefined) throw new QapiSchemaError(`the schema refers to type '${id}' but does not define it`);
    return found;
  }

  /** The readable name of a type ("BlockdevAddArguments", "int", "BlockdevAddArgumentsDriver[]" spelt "...List"). */
  nameOf(id: string): string {
    return this.names.get(id) ?? id;
  }

  /** The enum values of a union's tag member. */
  tagValues(union: QapiObject): readonly string[] {
    const tagMember = union.members.find((member) => member.name === union.tag);
    if (tagMember === undefined) return union.variants.map((variant) => variant.case);
    const tagType = this.type(tagMember.type);
    return tagType.kind === 'enum' ? tagType.values : union.variants.map((variant) => variant.case);
  }

  /** The members a union value with tag `tagValue` may carry: the common ones, then its branch's. */
  membersFor(union: QapiObject, tagValue: string): readonly QapiMember[] {
    const variant = union.variants.find((candidate) => candidate.case === tagValue);
    if (variant === undefined) return union.members;
    const branch = this.type(variant.type);
    return branch.kind === 'object' ? [...union.members, ...branch.members] : union.members;
  }
}

/** Reads the value of `query-qmp-schema`; throws QapiSchemaError if it is not SchemaInfo. */
export function readSchema(info: unknown): QapiSchema {
  if (!Array.isArray(info)) throw new QapiSchemaError('query-qmp-schema did not return an array');
  const types = new Map<string, QapiType>();
  const commands = new Map<string, QapiCommand>();
  const events = new Map<string, QapiEvent>();
  for (const entry of info) {
    if (typeof entry !== 'object' || entry === null) throw new QapiSchemaError('a SchemaInfo entry is not an object');
    const record = entry as Record<string, unknown>;
    const id = text(record, 'name');
    const metaType = text(record, 'meta-type');
    const features = strings(record.features);
    switch (metaType) {
      case 'command':
        commands.set(id, {
          name: id,
          argType: text(record, 'arg-type'),
          retType: text(record, 'ret-type'),
          allowOob: record['allow-oob'] === true,
          features,
        });
        break;
      case 'event':
        events.set(id, { name: id, argType: text(record, 'arg-type'), features });
        break;
      case 'builtin':
        types.set(id, { kind: 'builtin', id, jsonType: text(record, 'json-type') });
        break;
      case 'enum':
        types.set(id, readEnum(id, record));
        break;
      case 'array':
        types.set(id, { kind: 'array', id, element: text(record, 'element-type') });
        break;
      case 'object':
        types.set(id, readObject(id, record, features));
        break;
      case 'alternate':
        types.set(id, { kind: 'alternate', id, members: list(record.members).map((member) => text(member, 'type')) });
        break;
      default:
        // A meta-type newer than this reader: its entries are not used by anything it knows.
        break;
    }
  }
  return new QapiSchema(types, commands, events);
}

function readEnum(id: string, record: Record<string, unknown>): QapiEnum {
  const valueFeatures = new Map<string, readonly string[]>();
  // `members` (with features) is newer than `values`; either may be the only one.
  const members = record.members === undefined ? [] : list(record.members);
  for (const member of members) {
    const features = strings(member.features);
    if (features.length > 0) valueFeatures.set(text(member, 'name'), features);
  }
  const values = record.values === undefined ? members.map((member) => text(member, 'name')) : strings(record.values);
  return { kind: 'enum', id, values, valueFeatures };
}

function readObject(id: string, record: Record<string, unknown>, features: readonly string[]): QapiObject {
  const members = list(record.members).map((member) => ({
    name: text(member, 'name'),
    type: text(member, 'type'),
    // An optional member is one with a `default` key (always null in QEMU 7.2).
    optional: 'default' in member,
    features: strings(member.features),
  }));
  const variants = record.variants === undefined ? [] : list(record.variants).map((variant) => ({ case: text(variant, 'case'), type: text(variant, 'type') }));
  const tag = record.tag === undefined ? undefined : text(record, 'tag');
  return tag === undefined ? { kind: 'object', id, members, variants, features } : { kind: 'object', id, members, tag, variants, features };
}

function text(record: Record<string, unknown>, key: string): string {
  const value = record[key];
  if (typeof value !== 'string') throw new QapiSchemaError(`SchemaInfo member '${key}' is not a string in ${JSON.stringify(record).slice(0, 120)}`);
  return value;
}

function strings(value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) throw new QapiSchemaError('a SchemaInfo list of names is not a list of strings');
  return value as string[];
}

function list(value: unknown): Record<string, unknown>[] {
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'object' && item !== null)) {
    throw new QapiSchemaError('a SchemaInfo list of members is not a list of objects');
  }
  return value as Record<string, unknown>[];
}

/** Whether `features` holds a policy feature. */
export function policyFeatures(features: readonly string[]): PolicyFeature[] {
  return features.filter((feature): feature is PolicyFeature => feature === 'deprecated' || feature === 'unstable');
}
