/**
 * Checks a command's arguments against the schema of the QEMU it is about
 * to be sent to, before it is sent.
 *
 * The schema is the connection's own (`query-qmp-schema`, asked once per
 * connection, on the first checked command). What is built from it is
 * shared by every connection to the same QEMU binary: SchemaChecks are
 * cached by a hash of the schema's JSON, and each command's arguments are
 * compiled with ajv on its first use only. ajv itself is loaded on the
 * first check, so importing qmpx compiles nothing.
 */
import type AjvModule from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { commandArgumentsSchema } from './json-schema.js';
import { readSchema, type QapiSchema } from './model.js';
import { policyFindings, type CompatPolicy, type PolicyFinding } from './policy.js';

export type ValidateMode = 'off' | 'warn' | 'reject';

export interface ValidationOptions {
  /** Check arguments against the connected QEMU's schema before sending. Default 'off'. */
  validate?: ValidateMode;
  /** Deprecated/unstable input, as QEMU's -compat. Default: accept both. */
  compat?: CompatPolicy;
}

/** Why QEMU would refuse a command's arguments, in its words. */
export interface ArgumentProblem {
  member: string;
  desc: string;
}

type AjvClass = typeof AjvModule.default;
type AjvInstance = InstanceType<AjvClass>;

/** QAPI's int and number: bigint counts, since qmpx writes it as a JSON integer. */
function isQapiNumber(kind: string, data: unknown): boolean {
  if (typeof data === 'bigint') return true;
  return typeof data === 'number' && (kind === 'int' ? Number.isInteger(data) : Number.isFinite(data));
}

function createAjv(Ajv: AjvClass): AjvInstance {
  const ajv = new Ajv({ allErrors: false, discriminator: true, verbose: true, strict: false });
  ajv.addKeyword({ keyword: 'qapiNumber', schemaType: 'string', errors: false, validate: (kind: string, data: unknown) => isQapiNumber(kind, data) });
  return ajv;
}

let ajvConstructor: Promise<AjvClass> | undefined;

function loadAjv(): Promise<AjvClass> {
  // ajv ships CommonJS with `exports.default`; under NodeNext the default import is the module object.
  ajvConstructor ??= import('ajv').then((module) => module.default.default);
  return ajvConstructor;
}

const checksByHash = new Map<string, Promise<SchemaChecks>>();

/** The checks for a schema as `query-qmp-schema` returned it; one per distinct schema per process. */
export async function schemaChecksFor(schemaInfo: unknown): Promise<SchemaChecks> {
  // node:crypto is loaded by the first check, not by every client that loads the QMP client.
  const { createHash } = await import('node:crypto');
  const hash = createHash('sha256').update(JSON.stringify(schemaInfo)).digest('hex');
  let checks = checksByHash.get(hash);
  if (checks === undefined) {
    checks = loadAjv().then((Ajv) => new SchemaChecks(readSchema(schemaInfo), hash, createAjv(Ajv)));
    checksByHash.set(hash, checks);
    checks.catch(() => checksByHash.delete(hash));
  }
  return checks;
}

export class SchemaChecks {
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(
    readonly schema: QapiSchema,
    /** sha256 of the schema's JSON: the cache key. */
    readonly hash: string,
    private readonly ajv: AjvInstance,
  ) {}

  /** Whether `command`'s arguments have been compiled yet. */
  isCompiled(command: string): boolean {
    return this.compiled.has(command);
  }

  /**
   * The first problem QEMU would find with `args`, or undefined if they
   * are arguments `command` takes. Commands the schema does not know are
   * left to QEMU (it answers CommandNotFound).
   */
  problemWith(command: string, args: object | undefined): ArgumentProblem | undefined {
    if (!this.schema.commands.has(command)) return undefined;
    let validate = this.compiled.get(command);
    if (validate === undefined) {
      validate = this.ajv.compile(commandArgumentsSchema(this.schema, command));
      this.compiled.set(command, validate);
    }
    if (validate(args ?? {})) return undefined;
    return qemuWords(validate.errors?.[0]);
  }

  /** The deprecated or unstable parts of a call, for the `compat` policy. */
  policyFindings(command: string, args: object | undefined): PolicyFinding[] {
    return policyFindings(this.schema, command, args);
  }
}

/** An ajv error, said as QEMU's input visitor says it. */
export function qemuWords(error: ErrorObject | undefined): ArgumentProblem {
  if (error === undefined) return { member: '', desc: 'invalid arguments' };
  const at = memberPath(error.instancePath);
  const inside = (name: string): string => (at === '' ? name : `${at}.${name}`);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return missing(inside(String(params.missingProperty)));
    case 'not': // only used for a required member of an open command given as null
      return missing(at);
    case 'additionalProperties': {
      const member = inside(String(params.additionalProperty));
      return { member, desc: `Parameter '${member}' is unexpected` };
    }
    case 'enum':
      return { member: at, desc: `Parameter '${at}' does not accept value '${String(error.data)}'` };
    case 'discriminator': {
      const member = inside(String(params.tag));
      if (params.error === 'tag' && error.data !== null && typeof error.data === 'object' && !(String(params.tag) in error.data)) return missing(member);
      if (params.error === 'tag') return { member, desc: `Invalid parameter type for '${member}', expected: string` };
      return { member, desc: `Parameter '${member}' does not accept value '${String(params.tagValue)}'` };
    }
    case 'qapiNumber':
      return { member: at, desc: `Invalid parameter type for '${at || 'null'}', expected: ${error.schema === 'int' ? 'integer' : 'number'}` };
    case 'type':
      return { member: at, desc: `Invalid parameter type for '${at || 'null'}', expected: ${expectedWord(error)}` };
    default:
      return { member: at, desc: `Parameter '${at}' ${error.message ?? 'is invalid'}` };
  }
}

function missing(member: string): ArgumentProblem {
  return { member, desc: `Parameter '${member}' is missing` };
}

/** QEMU's word for what it expected: the JSON type, or the alternate's name. */
function expectedWord(error: ErrorObject): string {
  const parent = error.parentSchema as { title?: unknown } | undefined;
  if (typeof parent?.title === 'string') return parent.title;
  const type = (error.params as { type?: unknown }).type;
  return Array.isArray(type) ? type.join(' or ') : String(type);
}

/** "/file/size" → "file.size", "/children/0" → "children[0]", as QEMU names nested members. */
export function memberPath(instancePath: string): string {
  let path = '';
  for (const raw of instancePath.split('/').slice(1)) {
    const segment = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (/^(0|[1-9][0-9]*)$/.test(segment)) path += `[${segment}]`;
    else path += path === '' ? segment : `.${segment}`;
  }
  return path;
}
