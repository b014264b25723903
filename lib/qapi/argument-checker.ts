/**
 * Argument checks as one connection applies them. Loaded with the QMP
 * client; what it checks with (the schema model, ajv: lib/qapi/validate.ts)
 * is loaded by the first call that is checked, so a client that never
 * validates never loads it.
 */
import type { Logger } from '../log.js';
import { ArgumentsRefusedError } from './errors.js';
import type { CompatAction } from './policy.js';
import type { ArgumentProblem, SchemaChecks, ValidateMode, ValidationOptions } from './validate.js';

/**
 * One connection's checking: when to check, against what, and what to do
 * with a problem. `check` returns nothing when it can decide at once (the
 * schema is loaded), so pipelined commands keep their order and pay no
 * promise turn; only the first checked command waits for the schema.
 */
export class ArgumentChecker {
  private checks: SchemaChecks | undefined;
  private loading: Promise<SchemaChecks> | undefined;

  constructor(
    private readonly options: ValidationOptions,
    private readonly fetchSchema: () => Promise<unknown>,
    private readonly logger: Logger,
  ) {}

  /** Whether any check applies to a call with this per-call mode. */
  applies(callMode: ValidateMode | undefined): boolean {
    const mode = callMode ?? this.options.validate ?? 'off';
    const compat = this.options.compat;
    return mode !== 'off' || (compat?.deprecatedInput ?? 'accept') !== 'accept' || (compat?.unstableInput ?? 'accept') !== 'accept';
  }

  /** Throws ArgumentsRefusedError, or returns a promise that rejects with it, when the call must not be sent. */
  check(command: string, args: object | undefined, callMode: ValidateMode | undefined): void | Promise<void> {
    if (!this.applies(callMode)) return;
    if (this.checks !== undefined) return this.judge(this.checks, command, args, callMode);
    this.loading ??= this.load();
    return this.loading.then((checks) => {
      this.checks = checks;
      this.judge(checks, command, args, callMode);
    });
  }

  /** The schema checks, once loaded (for `qmpx schema` and tests). */
  async schemaChecks(): Promise<SchemaChecks> {
    this.loading ??= this.load();
    this.checks = await this.loading;
    return this.checks;
  }

  private async load(): Promise<SchemaChecks> {
    const schemaInfo = await this.fetchSchema();
    const { schemaChecksFor } = await import('./validate.js');
    return schemaChecksFor(schemaInfo);
  }

  private judge(checks: SchemaChecks, command: string, args: object | undefined, callMode: ValidateMode | undefined): void {
    const mode = callMode ?? this.options.validate ?? 'off';
    if (mode !== 'off') {
      const problem = checks.problemWith(command, args);
      if (problem !== undefined) this.act(mode === 'reject' ? 'reject' : 'warn', command, problem);
    }
    const compat = this.options.compat ?? {};
    if ((compat.deprecatedInput ?? 'accept') === 'accept' && (compat.unstableInput ?? 'accept') === 'accept') return;
    for (const finding of checks.policyFindings(command, args)) {
      const action = (finding.feature === 'deprecated' ? compat.deprecatedInput : compat.unstableInput) ?? 'accept';
      if (action !== 'accept') this.act(action, command, finding);
    }
  }

  private act(action: Exclude<CompatAction, 'accept'>, command: string, problem: ArgumentProblem): void {
    if (action === 'reject') throw new ArgumentsRefusedError(command, problem.member, problem.desc);
    this.logger.warn({ command, member: problem.member }, `${command}: QEMU's schema says: ${problem.desc} (sent anyway)`);
  }
}
