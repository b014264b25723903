/**
 * The one place ajv enters the project. Every JSON shape (wire messages,
 * configs, schemas at rest) is compiled once through here.
 */
import AjvModule, { type ErrorObject, type JSONSchemaType, type ValidateFunction } from 'ajv';

// ajv ships CommonJS with `exports.default`; under NodeNext the default import is the module object.
const Ajv = AjvModule.default;

const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true });

export type { JSONSchemaType };

export interface CompiledSchema<T> {
  (value: unknown): value is T;
  /** A one-line account of why the last value failed, for error messages. */
  explain(): string;
}

function describe(errors: ErrorObject[] | null | undefined): string {
  if (!errors || errors.length === 0) return 'invalid';
  return errors.map((e) => `${e.instancePath || '(root)'} ${e.message ?? 'is invalid'}`).join('; ');
}

/** Compiles a JSON schema into a type guard. Call at module load, not per message. */
export function compileSchema<T>(schema: object): CompiledSchema<T> {
  const validate = ajv.compile(schema) as ValidateFunction<T>;
  const guard = ((value: unknown): value is T => validate(value)) as CompiledSchema<T>;
  guard.explain = () => describe(validate.errors);
  return guard;
}
