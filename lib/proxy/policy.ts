/**
 * Which commands a downstream socket may run.
 *
 * `full` allows everything QEMU allows. `read-only` allows commands that
 * only report state: every `query-*` and `x-query-*` command and the list
 * below, which read QOM and type information and change nothing.
 * `human-monitor-command` is NOT read-only (any HMP command can run through
 * it), nor is anything else that changes the VM or the monitor.
 */

export type PolicyName = 'full' | 'read-only';

/** Commands besides `query-*` / `x-query-*` that the read-only policy allows. */
export const READ_ONLY_SAFE_COMMANDS: ReadonlySet<string> = new Set([
  'qmp_capabilities',
  'qom-get',
  'qom-list',
  'qom-list-types',
  'qom-list-properties',
  'device-list-properties',
]);

export interface Policy {
  readonly name: PolicyName;
  /** True when `command` may be forwarded. */
  allows(command: string): boolean;
  /** The GenericError desc for a refused command; names the policy. */
  denial(command: string): string;
}

const fullPolicy: Policy = {
  name: 'full',
  allows: () => true,
  denial: (command) => `command '${command}' is not allowed`,
};

const readOnlyPolicy: Policy = {
  name: 'read-only',
  allows: (command) => command.startsWith('query-') || command.startsWith('x-query-') || READ_ONLY_SAFE_COMMANDS.has(command),
  denial: (command) => `command '${command}' is not allowed by the qmpx read-only policy of this socket`,
};

/** The policy of that name. */
export function policyNamed(name: PolicyName): Policy {
  return name === 'read-only' ? readOnlyPolicy : fullPolicy;
}
