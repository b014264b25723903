/**
 * One command's arguments as a JSON Schema (draft 7, ajv's dialect), built
 * from the model with a `definitions` entry per named type it reaches.
 *
 *   object     closed (`additionalProperties: false`): QEMU refuses unknown members
 *   union      `oneOf` + `discriminator` on the tag, one closed branch per
 *              group of tag values sharing a branch type
 *   alternate  the JSON types it takes, then an `if`/`then` per branch keyed
 *              by JSON type, as QEMU picks a branch by the value's JSON type
 *   int        the keyword `qapiNumber` (lib/qapi/validate.ts): an integral
 *              number or a bigint, as qmpx writes both as JSON integers;
 *              introspection says "int" for every width, so ranges (uint8,
 *              size, ...) are left to QEMU
 */
import type { QapiMember, QapiObject, QapiSchema, QapiType } from './model.js';

export type JsonSchema = Record<string, unknown>;

/**
 * Commands QEMU defines with `gen: false`: they take members their schema
 * does not list (device_add takes every property of the device), which
 * introspection does not say; their top level stays open.
 */
export const OPEN_ARGUMENT_COMMANDS: ReadonlySet<string> = new Set(['device_add']);

const BUILTIN_SCHEMAS: Record<string, JsonSchema> = {
  string: { type: 'string' },
  int: { qapiNumber: 'int' },
  number: { qapiNumber: 'number' },
  boolean: { type: 'boolean' },
  null: { type: 'null' },
  value: {},
};

/** The JSON Schema `type` words each QAPI type can take, for alternates. */
function jsonTypesOf(type: QapiType): string[] {
  switch (type.kind) {
    case 'builtin':
      // An alternate's branches are told apart by JSON Schema types, which have no word for bigint.
      return type.jsonType === 'value' ? [] : [type.jsonType === 'int' ? 'integer' : type.jsonType];
    case 'enum':
      return ['string'];
    case 'array':
      return ['array'];
    case 'object':
      return ['object'];
    case 'alternate':
      return [];
  }
}

export function commandArgumentsSchema(schema: QapiSchema, command: string): JsonSchema {
  const info = schema.commands.get(command);
  if (info === undefined) throw new RangeError(`no command '${command}' in the schema`);
  const definitions: Record<string, JsonSchema> = {};
  const builder = new SchemaBuilder(schema, definitions);
  const root = OPEN_ARGUMENT_COMMANDS.has(command) ? openArguments(schema, info.argType) : builder.inline(info.argType, false);
  return { $schema: 'http://json-schema.org/draft-07/schema#', ...root, definitions };
}

/**
 * A `gen: false` command's arguments: QEMU reads them itself, taking any
 * member and any scalar (device_add turns 12345 into "12345"), so only
 * the required members are checked, for being there (QEMU counts a null
 * as missing).
 */
function openArguments(schema: QapiSchema, argType: string): JsonSchema {
  const type = schema.type(argType);
  const required = type.kind === 'object' ? type.members.filter((member) => !member.optional).map((member) => member.name) : [];
  if (required.length === 0) return { type: 'object' };
  const properties = Object.fromEntries(required.map((name) => [name, { not: { type: 'null' } }]));
  return { type: 'object', properties, required };
}

class SchemaBuilder {
  constructor(
    private readonly schema: QapiSchema,
    private readonly definitions: Record<string, JsonSchema>,
  ) {}

  /** The schema for a use of type `id`: builtins inline, named types by reference. */
  ref(id: string): JsonSchema {
    const type = this.schema.type(id);
    if (type.kind === 'builtin') return BUILTIN_SCHEMAS[type.jsonType] ?? {};
    if (type.kind === 'array') return { type: 'array', items: this.ref(type.element) };
    const name = this.schema.nameOf(id);
    if (!(name in this.definitions)) {
      this.definitions[name] = {}; // reserved first: types may refer to themselves
      this.definitions[name] = this.inline(id);
    }
    return { $ref: `#/definitions/${name}` };
  }

  inline(id: string, open = false): JsonSchema {
    const type = this.schema.type(id);
    switch (type.kind) {
      case 'builtin':
      case 'array':
        return this.ref(id);
      case 'enum':
        return { type: 'string', enum: [...type.values] };
      case 'alternate':
        return this.alternate(id, type.members);
      case 'object':
        return type.tag === undefined ? this.closedObject(type.members, open) : this.union(type, open);
    }
  }

  private closedObject(members: readonly QapiMember[], open: boolean, tag?: { name: string; values: string[] }): JsonSchema {
    const properties: Record<string, JsonSchema> = {};
    const required: string[] = [];
    for (const member of members) {
      properties[member.name] = tag !== undefined && member.name === tag.name ? { type: 'string', enum: tag.values } : this.ref(member.type);
      if (!member.optional) required.push(member.name);
    }
    return { type: 'object', properties, ...(required.length > 0 ? { required } : {}), additionalProperties: open };
  }

  private union(union: QapiObject, open: boolean): JsonSchema {
    const tag = union.tag!;
    const groups = new Map<string, string[]>(); // branch type (or '' for none) → tag values
    for (const value of this.schema.tagValues(union)) {
      const branch = union.variants.find((variant) => variant.case === value)?.type ?? '';
      groups.set(branch, [...(groups.get(branch) ?? []), value]);
    }
    const oneOf = [...groups].map(([branch, values]) => {
      const branchType = branch === '' ? undefined : this.schema.type(branch);
      const members = branchType?.kind === 'object' ? [...union.members, ...branchType.members] : union.members;
      return this.closedObject(members, open, { name: tag, values });
    });
    return {
      type: 'object',
      properties: { [tag]: { type: 'string' } },
      required: [tag],
      discriminator: { propertyName: tag },
      oneOf,
    };
  }

  private alternate(id: string, members: readonly string[]): JsonSchema {
    const types = members.map((member) => this.schema.type(member));
    const jsonTypes = types.flatMap(jsonTypesOf);
    if (types.some((type) => type.kind === 'builtin' && type.jsonType === 'value')) return {};
    const allOf = members.map((member, index) => ({ if: { type: jsonTypesOf(types[index]!) }, then: this.ref(member) }));
    return { title: this.schema.nameOf(id), type: jsonTypes, allOf };
  }
}
