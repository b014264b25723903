/**
 * Readable names for the numbered types of an introspected schema.
 *
 * A type is named after the first place it is used, walking out from the
 * commands and events:
 *   command arguments  `<Command>Arguments`   (blockdev-add → BlockdevAddArguments)
 *   command return     `<Command>Return`
 *   event data         `<Event>Data`          (BLOCK_JOB_COMPLETED → BlockJobCompletedData)
 *   a member's type    `<Owner><Member>`      (BlockdevAddArguments.discard → BlockdevAddArgumentsDiscard)
 *   a union branch     `<Owner><Case>`        (BlockdevAddArguments, driver qcow2 → BlockdevAddArgumentsQcow2)
 *   an alternate's     `<Alternate><JsonType>` (…Object, …String, …Enum)
 *   an array           `<Element>List`, the element named as if it were used directly
 *   the empty object   `Empty` (the first in the schema; QEMU 7.2 has two)
 *   unused types       `Type<id>` (introspection lists a few no command or event uses)
 * Ties: the names a type could get are ranked by how far the use is from a
 * command or event (nearer wins), then by the name in code-unit order; a
 * name already taken goes to the next candidate, and when none is left a
 * number is appended (2, 3, ...). The result depends only on the schema's
 * content, so the same QEMU always yields the same names.
 */
import type { QapiCommand, QapiEvent, QapiType } from './schema-types.js';

/** What naming reads of a schema: its types, and the commands and events that use them. */
interface SchemaEntries {
  readonly types: ReadonlyMap<string, QapiType>;
  readonly commands: ReadonlyMap<string, QapiCommand>;
  readonly events: ReadonlyMap<string, QapiEvent>;
}

/** "blockdev-add" → "BlockdevAdd", "BLOCK_JOB_COMPLETED" → "BlockJobCompleted". */
export function pascalCase(name: string): string {
  return name
    .split(/[-_.:]+/)
    .filter((word) => word.length > 0)
    .map((word) => {
      const lower = /[a-z]/.test(word) ? word : word.toLowerCase();
      return lower[0]!.toUpperCase() + lower.slice(1);
    })
    .join('');
}

interface Candidate {
  id: string;
  name: string;
}

export function assignReadableNames(schema: SchemaEntries): Map<string, string> {
  const names = new Map<string, string>();
  const taken = new Set<string>();
  for (const [id, type] of schema.types) {
    if (type.kind === 'builtin') {
      names.set(id, id);
      taken.add(id);
    } else if (isEmptyObject(type) && !taken.has('Empty')) {
      names.set(id, 'Empty');
      taken.add('Empty');
    }
  }
  let level: Candidate[] = [];
  for (const command of sorted(schema.commands.keys())) {
    const { argType, retType } = schema.commands.get(command)!;
    level.push(...candidatesFor(schema, argType, `${pascalCase(command)}Arguments`));
    level.push(...candidatesFor(schema, retType, `${pascalCase(command)}Return`));
  }
  for (const event of sorted(schema.events.keys())) {
    level.push(...candidatesFor(schema, schema.events.get(event)!.argType, `${pascalCase(event)}Data`));
  }
  while (level.length > 0) {
    const named = nameLevel(level, names, taken);
    level = named.flatMap((id) => usesOf(schema, id, names.get(id)!));
  }
  for (const [id, type] of schema.types) {
    if (names.has(id)) continue;
    if (type.kind === 'array') names.set(id, `${names.get(type.element) ?? `Type${type.element}`}List`);
    else names.set(id, `Type${id}`);
  }
  return names;
}

/** Gives every not yet named type of one level its best free candidate; returns the ids named. */
function nameLevel(level: Candidate[], names: Map<string, string>, taken: Set<string>): string[] {
  const byId = new Map<string, string[]>();
  for (const { id, name } of level) {
    if (names.has(id)) continue;
    const list = byId.get(id) ?? [];
    list.push(name);
    byId.set(id, list);
  }
  const order = [...byId.entries()].map(([id, candidates]) => ({ id, candidates: sorted(new Set(candidates)) }));
  order.sort((a, b) => compare(a.candidates[0]!, b.candidates[0]!) || compare(a.id, b.id));
  const named: string[] = [];
  for (const { id, candidates } of order) {
    let chosen = candidates.find((candidate) => !taken.has(candidate));
    for (let suffix = 2; chosen === undefined; suffix++) {
      if (!taken.has(`${candidates[0]}${suffix}`)) chosen = `${candidates[0]}${suffix}`;
    }
    names.set(id, chosen);
    taken.add(chosen);
    named.push(id);
  }
  return named;
}

/** The candidate for a use of `id` named `name`; arrays pass it to their element. */
function candidatesFor(schema: SchemaEntries, id: string, name: string): Candidate[] {
  let type: QapiType | undefined = schema.types.get(id);
  let target = id;
  while (type?.kind === 'array') {
    target = type.element;
    type = schema.types.get(target);
  }
  if (type === undefined || type.kind === 'builtin') return [];
  return [{ id: target, name }];
}

/** The candidates `id`, named `owner`, gives to the types it uses. */
function usesOf(schema: SchemaEntries, id: string, owner: string): Candidate[] {
  const type = schema.types.get(id);
  if (type === undefined) return [];
  if (type.kind === 'object') {
    return [
      ...type.members.flatMap((member) => candidatesFor(schema, member.type, `${owner}${pascalCase(member.name)}`)),
      ...type.variants.flatMap((variant) => candidatesFor(schema, variant.type, `${owner}${pascalCase(variant.case)}`)),
    ];
  }
  if (type.kind === 'alternate') {
    return type.members.flatMap((member) => candidatesFor(schema, member, `${owner}${alternateBranchWord(schema, member)}`));
  }
  return [];
}

function alternateBranchWord(schema: SchemaEntries, id: string): string {
  const type = schema.types.get(id);
  switch (type?.kind) {
    case 'object':
      return 'Object';
    case 'enum':
      return 'Enum';
    case 'array':
      return 'List';
    default:
      return 'Value';
  }
}

function isEmptyObject(type: QapiType): boolean {
  return type.kind === 'object' && type.members.length === 0 && type.variants.length === 0;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sorted(values: Iterable<string>): string[] {
  return [...values].sort(compare);
}
