/**
 * Tab completion for `qmpx shell`, from what the monitor says about itself:
 * command names from `query-commands`, argument names (and enum values)
 * from `query-qmp-schema`, HMP command names from HMP's own `help` and
 * `info` listings.
 *
 * In the schema, a command's `arg-type` names an object type whose
 * `members` are the arguments; a member's `type` names another entity
 * (object, enum, array `[T]`, alternate, builtin). A union object also has
 * `variants`, each adding the members of another object type, so all of
 * them are offered. Dotted keys walk into object members the way the
 * key=value form nests them (`file.driver=`).
 */

/** The subset of a query-qmp-schema entity that completion reads. */
export interface SchemaEntity {
  name: string;
  'meta-type': string;
  'arg-type'?: string;
  members?: Array<{ name: string; type?: string }>;
  variants?: Array<{ case: string; type: string }>;
  /** A union's discriminator member: its value picks the one variant that applies. */
  tag?: string;
  values?: string[];
}

/** What the shell knows how to complete. */
export interface CompletionData {
  /** QMP command names (empty on an HMP-only monitor). */
  qmpCommands: readonly string[];
  /** The QMP schema, or [] when the monitor did not give one. */
  schema: readonly SchemaEntity[];
  /** HMP command names, aliases included. */
  hmpCommands: readonly string[];
  /** Subcommands of HMP `info`. */
  hmpInfo: readonly string[];
}

/** A readline completer result: candidates, and the text they replace. */
export type Completion = [string[], string];

/** Completes QMP and HMP lines against one monitor's CompletionData. */
export class ShellCompleter {
  private readonly entities = new Map<string, SchemaEntity>();

  constructor(
    private readonly data: CompletionData,
    /** The shell's own commands (`/hmp` ...), offered in both modes. */
    private readonly metaCommands: readonly string[],
  ) {
    for (const entity of data.schema) this.entities.set(entity.name, entity);
  }

  /** Candidates for the word under the cursor at the end of `line`. */
  complete(line: string, mode: 'qmp' | 'hmp'): Completion {
    const word = /\S*$/.exec(line)![0];
    const before = line.slice(0, line.length - word.length);
    const words = before.trim() === '' ? [] : before.trim().split(/\s+/);
    if (words.length === 0) {
      const names = word.startsWith('/') ? this.metaCommands : mode === 'qmp' ? this.data.qmpCommands : this.data.hmpCommands;
      return [matching(names, word), word];
    }
    if (mode === 'hmp') {
      return words.length === 1 && words[0] === 'info' ? [matching(this.data.hmpInfo, word), word] : [[], word];
    }
    if (before.trimStart().startsWith('{')) return [[], word];
    return this.completeArgument(words[0]!, words.slice(1), word);
  }

  /** `key=`, `key.` or, after `key=`, enum values and booleans. */
  private completeArgument(command: string, previous: readonly string[], word: string): Completion {
    const commandEntity = this.entities.get(command);
    if (commandEntity?.['meta-type'] !== 'command' || commandEntity['arg-type'] === undefined) return [[], word];
    const equals = word.indexOf('=');
    if (equals !== -1) {
      const type = this.memberType(commandEntity['arg-type'], word.slice(0, equals).split('.'));
      const values = type === undefined ? [] : this.valuesOf(type);
      return [matching(values.map((value) => word.slice(0, equals + 1) + value), word), word];
    }
    const path = word.split('.');
    const prefix = path.slice(0, -1);
    const objectType = prefix.length === 0 ? commandEntity['arg-type'] : this.memberType(commandEntity['arg-type'], prefix);
    if (objectType === undefined) return [[], word];
    const given = new Set(previous.map((pair) => pair.split('=')[0]));
    const head = prefix.length === 0 ? '' : `${prefix.join('.')}.`;
    // driver=qcow2 given: only the qcow2 variant's members are offered at that level.
    const chosen = new Map(previous.filter((pair) => pair.includes('=')).map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]));
    const candidates = this.membersOf(objectType, (tag) => chosen.get(`${head}${tag}`))
      .flatMap((member) => this.endingsOf(member.type).map((ending) => `${head}${member.name}${ending}`))
      .filter((candidate) => !given.has(candidate.replace(/[=.]$/, '')));
    return [matching([...new Set(candidates)], word), word];
  }

  /** The type of the member at `path` inside object type `typeName`, if the schema has it. */
  private memberType(typeName: string, path: readonly string[]): string | undefined {
    let current: string | undefined = typeName;
    for (const name of path) {
      if (current === undefined) return undefined;
      current = this.membersOf(current).find((member) => member.name === name)?.type;
    }
    return current;
  }

  /**
   * Members of an object type (or of the object branches of an alternate,
   * such as BlockdevRef), with those of the union variant its tag's given
   * value picks, or of every variant while the tag is not given.
   */
  private membersOf(typeName: string, tagValue: (tag: string) => string | undefined = () => undefined): Array<{ name: string; type?: string }> {
    const entity = this.entities.get(typeName);
    if (entity?.['meta-type'] === 'alternate') return (entity.members ?? []).flatMap((branch) => (branch.type === undefined ? [] : this.membersOf(branch.type, tagValue)));
    if (entity?.['meta-type'] !== 'object') return [];
    const members = [...(entity.members ?? [])];
    const picked = entity.tag === undefined ? undefined : tagValue(entity.tag);
    for (const variant of entity.variants ?? []) {
      if (picked === undefined || variant.case === picked) members.push(...this.membersOf(variant.type));
    }
    return members;
  }

  /** How a member of this type is completed: `.` to walk into an object, `=` for a value; an alternate may take both. */
  private endingsOf(typeName: string | undefined): string[] {
    const entity = typeName === undefined ? undefined : this.entities.get(typeName);
    if (entity?.['meta-type'] === 'object') return ['.'];
    if (entity?.['meta-type'] !== 'alternate') return ['='];
    const branches = (entity.members ?? []).map((branch) => this.entities.get(branch.type ?? '')?.['meta-type']);
    return [...(branches.includes('object') ? ['.'] : []), ...(branches.some((kind) => kind !== 'object') ? ['='] : [])];
  }

  private valuesOf(typeName: string): string[] {
    if (typeName === 'bool') return ['true', 'false'];
    const entity = this.entities.get(typeName);
    return entity?.['meta-type'] === 'enum' ? [...(entity.values ?? [])] : [];
  }
}

function matching(candidates: readonly string[], word: string): string[] {
  return candidates.filter((candidate) => candidate.startsWith(word)).sort();
}

/**
 * HMP command names from the text of HMP `help`: each entry starts a line
 * (continuations are indented) with `name[|alias] args -- text`.
 */
export function hmpCommandNames(helpText: string): string[] {
  const names = new Set<string>();
  for (const line of helpText.split(/\r?\n/)) {
    const match = /^([^\s[]+)/.exec(line);
    if (match) for (const name of match[1]!.split('|')) if (name !== '') names.add(name);
  }
  return [...names].sort();
}

/** Subcommand names from the text of HMP `info`: lines `info NAME ... -- text`. */
export function hmpInfoNames(infoText: string): string[] {
  const names = new Set<string>();
  for (const line of infoText.split(/\r?\n/)) {
    const match = /^info ([^\s[]+)/.exec(line);
    if (match) names.add(match[1]!);
  }
  return [...names].sort();
}
