/** The shapes of the schema model (lib/qapi/model.ts): SchemaInfo entries, read. */

/** A compatibility feature QEMU's -compat policy acts on. */
export type PolicyFeature = 'deprecated' | 'unstable';

export interface QapiMember {
  readonly name: string;
  /** The member's type id (a builtin name, a number, or "[id]"). */
  readonly type: string;
  readonly optional: boolean;
  readonly features: readonly string[];
}

export interface QapiVariant {
  /** The tag value that selects this branch. */
  readonly case: string;
  readonly type: string;
}

interface TypeBase {
  /** The id introspection uses: "int", "49", "[49]". */
  readonly id: string;
}

export interface QapiBuiltin extends TypeBase {
  readonly kind: 'builtin';
  /** 'string' | 'int' | 'number' | 'boolean' | 'null' | 'value' */
  readonly jsonType: string;
}

export interface QapiEnum extends TypeBase {
  readonly kind: 'enum';
  readonly values: readonly string[];
  /** Features of single values (e.g. an unstable capability). */
  readonly valueFeatures: ReadonlyMap<string, readonly string[]>;
}

export interface QapiArray extends TypeBase {
  readonly kind: 'array';
  readonly element: string;
}

export interface QapiObject extends TypeBase {
  readonly kind: 'object';
  readonly members: readonly QapiMember[];
  /** Set on a union: the member whose value picks the variant. */
  readonly tag?: string;
  readonly variants: readonly QapiVariant[];
  readonly features: readonly string[];
}

export interface QapiAlternate extends TypeBase {
  readonly kind: 'alternate';
  /** The branch types, distinguished by their JSON type. */
  readonly members: readonly string[];
}

export type QapiType = QapiBuiltin | QapiEnum | QapiArray | QapiObject | QapiAlternate;

export interface QapiCommand {
  readonly name: string;
  readonly argType: string;
  readonly retType: string;
  readonly allowOob: boolean;
  readonly features: readonly string[];
}

export interface QapiEvent {
  readonly name: string;
  readonly argType: string;
  readonly features: readonly string[];
}
