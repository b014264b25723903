/**
 * Which commands a downstream socket may run.
 *
 * `full` allows everything QEMU allows. `read-only` allows the commands of
 * an explicit list, each reviewed for what it does in QEMU
 * (read-only/commands.ts; docs/read-only-policy.md): every other command is
 * refused, whatever its name, so a query command a later QEMU adds is
 * refused until reviewed. `qom-get` is further refused for properties that
 * hold secret material (read-only/secrets.ts). An operator can refuse more
 * per socket (`readOnlyDeny`), never allow more.
 */
import type { QValue } from '../qemu-json/parser.js';
import { READ_ONLY_COMMANDS } from './read-only/commands.js';
import { isSecretProperty } from './read-only/secrets.js';

export type PolicyName = 'full' | 'read-only';

export interface Policy {
  readonly name: PolicyName;
  /** True when a command of that name may be forwarded (its arguments may still be refused: see `refusal`). */
  allows(command: string): boolean;
  /** The GenericError desc for a refused command; names the policy. */
  denial(command: string): string;
  /** Undefined when the command with those arguments may be forwarded, else the GenericError desc. */
  refusal(command: string, args: QValue | undefined): string | undefined;
}

const fullPolicy: Policy = {
  name: 'full',
  allows: () => true,
  denial: (command) => `command '${command}' is not allowed`,
  refusal: () => undefined,
};

const READ_ONLY_SUFFIX = 'by the qmpx read-only policy of this socket';

/** The `property` argument of a qom-get, when it is a string (anything else QEMU refuses itself). */
function qomGetProperty(args: QValue | undefined): string | undefined {
  if (args?.kind !== 'object') return undefined;
  const property = args.members.get('property');
  return property?.kind === 'string' ? property.value : undefined;
}

function readOnlyPolicy(extraDenied: ReadonlySet<string>): Policy {
  const allows = (command: string): boolean => READ_ONLY_COMMANDS.has(command) && !extraDenied.has(command);
  const denial = (command: string): string => `command '${command}' is not allowed ${READ_ONLY_SUFFIX}`;
  return {
    name: 'read-only',
    allows,
    denial,
    refusal(command, args) {
      if (!allows(command)) return denial(command);
      if (command === 'qom-get') {
        const property = qomGetProperty(args);
        if (property !== undefined && isSecretProperty(property)) return `property '${property}' may not be read ${READ_ONLY_SUFFIX}`;
      }
      return undefined;
    },
  };
}

const defaultReadOnly = readOnlyPolicy(new Set());

/**
 * The policy of that name. `readOnlyDeny` names commands the read-only
 * policy refuses besides its own: it can only take commands away.
 */
export function policyNamed(name: PolicyName, readOnlyDeny: readonly string[] = []): Policy {
  if (name === 'full') return fullPolicy;
  return readOnlyDeny.length === 0 ? defaultReadOnly : readOnlyPolicy(new Set(readOnlyDeny));
}

/**
 * Why a deny list is wrong, or undefined: every name must be a command the
 * read-only policy allows, since a misspelt one would tighten nothing.
 */
export function readOnlyDenyProblem(names: readonly string[]): string | undefined {
  const stray = names.find((name) => !READ_ONLY_COMMANDS.has(name));
  return stray === undefined ? undefined : `readOnlyDeny: '${stray}' is not a command the read-only policy allows`;
}
