/**
 * Deprecated and unstable input, judged as QEMU's `-compat
 * deprecated-input=...,unstable-input=...` judges it: the command itself,
 * each member present in the arguments, each enum value given. qmpx's
 * actions are `accept`, `warn` (log and send) or `reject` (refuse before
 * sending, in QEMU's words).
 */
import { policyFeatures, type PolicyFeature, type QapiSchema, type QapiType } from './model.js';

export type CompatAction = 'accept' | 'warn' | 'reject';

export interface CompatPolicy {
  /** What to do with deprecated commands, members and values. Default 'accept'. */
  deprecatedInput?: CompatAction;
  /** What to do with unstable ones (names starting "x-" mostly). Default 'accept'. */
  unstableInput?: CompatAction;
}

export interface PolicyFinding {
  feature: PolicyFeature;
  /** '' for the command, else the member's path ("capabilities[0].capability"). */
  member: string;
  /** QEMU's text when its policy refuses the same input. */
  desc: string;
  /** QEMU's error class for it. */
  errorClass: 'CommandNotFound' | 'GenericError';
}

const WORD: Record<PolicyFeature, string> = { deprecated: 'Deprecated', unstable: 'Unstable' };

/** Every deprecated or unstable thing `args` uses, in the order QEMU meets them. */
export function policyFindings(schema: QapiSchema, command: string, args: unknown): PolicyFinding[] {
  const info = schema.commands.get(command);
  if (info === undefined) return [];
  const findings: PolicyFinding[] = policyFeatures(info.features).map((feature) => ({
    feature,
    member: '',
    desc: `${WORD[feature]} command ${command} disabled by policy`,
    errorClass: 'CommandNotFound',
  }));
  walk(schema, info.argType, args, '', findings);
  return findings;
}

function walk(schema: QapiSchema, id: string, value: unknown, path: string, findings: PolicyFinding[]): void {
  const type: QapiType | undefined = schema.types.get(id);
  if (type === undefined || value === undefined) return;
  switch (type.kind) {
    case 'enum': {
      if (typeof value !== 'string') return;
      for (const feature of policyFeatures(type.valueFeatures.get(value) ?? [])) {
        findings.push({ feature, member: path, desc: `${WORD[feature]} value ${value} disabled by policy`, errorClass: 'GenericError' });
      }
      return;
    }
    case 'array':
      if (Array.isArray(value)) value.forEach((item, index) => walk(schema, type.element, item, `${path}[${index}]`, findings));
      return;
    case 'alternate':
      for (const member of type.members) walk(schema, member, value, path, findings);
      return;
    case 'object': {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return;
      const record = value as Record<string, unknown>;
      const tagValue = type.tag === undefined ? undefined : record[type.tag];
      const members = typeof tagValue === 'string' ? schema.membersFor(type, tagValue) : type.members;
      for (const member of members) {
        if (!(member.name in record)) continue;
        const memberPath = path === '' ? member.name : `${path}.${member.name}`;
        for (const feature of policyFeatures(member.features)) {
          // QEMU names the member alone here, without quotes or its path.
          findings.push({ feature, member: memberPath, desc: `${WORD[feature]} parameter ${member.name} disabled by policy`, errorClass: 'GenericError' });
        }
        walk(schema, member.type, record[member.name], memberPath, findings);
      }
      return;
    }
    case 'builtin':
      return;
  }
}
