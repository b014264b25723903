/**
 * The one place ajv enters the project. Every JSON shape (wire messages,
 * configs, schemas at rest) becomes a type guard through here, in one of two
 * ways:
 *
 * - compileSchema: compiled by ajv the first time the guard is called, so
 *   importing a module that declares a schema costs nothing, and ajv itself
 *   is loaded only when some schema is first used (it is a large package:
 *   loading it and compiling a first schema takes longer than a whole
 *   `qmpx exec`);
 * - precompiledSchema: a validator ajv generated ahead of time as source
 *   (scripts/compile-schemas.mjs, for the shapes every connection reads),
 *   so a short-lived client never loads ajv at all.
 *
 * Both report failures with the same ajv error objects.
 */
import { createRequire } from 'node:module';
import type AjvModule from 'ajv';
import type { ErrorObject, JSONSchemaType, ValidateFunction } from 'ajv';

export type { JSONSchemaType };

/** The options every schema is compiled with, here and by scripts/compile-schemas.mjs. */
export const AJV_OPTIONS = { allErrors: false, strict: true, allowUnionTypes: true } as const;

export interface CompiledSchema<T> {
  (value: unknown): value is T;
  /** A one-line account of why the last value failed, for error messages. */
  explain(): string;
}

/** What an ajv validator is, compiled now or generated ahead of time. */
export interface Validator {
  (value: unknown): boolean;
  errors?: ErrorObject[] | null;
}

type Ajv = InstanceType<typeof AjvModule.default>;

let ajv: Ajv | undefined;

/** The one ajv instance, made on first use. ajv ships CommonJS, so it can be loaded synchronously here. */
function compiler(): Ajv {
  if (ajv === undefined) {
    const load = createRequire(import.meta.url);
    const { default: Ajv } = load('ajv') as typeof AjvModule;
    ajv = new Ajv(AJV_OPTIONS);
  }
  return ajv;
}

function describe(errors: ErrorObject[] | null | undefined): string {
  if (!errors || errors.length === 0) return 'invalid';
  return errors.map((e) => `${e.instancePath || '(root)'} ${e.message ?? 'is invalid'}`).join('; ');
}

/**
 * A type guard for a JSON schema, compiled on its first call (a schema that
 * does not compile throws then). Declare it at module level, never per
 * message: the compiled validator is kept.
 */
export function compileSchema<T>(schema: object): CompiledSchema<T> {
  let validate: ValidateFunction<T> | undefined;
  const guard = ((value: unknown): value is T => (validate ??= compiler().compile<T>(schema))(value)) as CompiledSchema<T>;
  guard.explain = () => describe(validate?.errors);
  return guard;
}

/** A type guard for a validator ajv generated ahead of time (scripts/compile-schemas.mjs). */
export function precompiledSchema<T>(validate: Validator): CompiledSchema<T> {
  const guard = ((value: unknown): value is T => validate(value)) as CompiledSchema<T>;
  guard.explain = () => describe(validate.errors);
  return guard;
}
