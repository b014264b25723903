/**
 * Errors of the schema layer. Both descend from QmpxError with a stable code.
 *
 *   QapiSchemaError      QEMU's schema could not be read (code QAPI_SCHEMA)
 *   ArgumentsRefusedError  qmpx refused a command before sending it (code ARGUMENTS_REFUSED)
 */
import { QmpxError } from '../errors.js';

export class QapiSchemaError extends QmpxError {
  override readonly code = 'QAPI_SCHEMA';
}

/**
 * qmpx checked a command against the connected QEMU's schema (or its
 * deprecated/unstable policy) and did not send it. `desc` is what QEMU
 * itself answers for the same mistake, where QEMU has words for it.
 */
export class ArgumentsRefusedError extends QmpxError {
  override readonly code = 'ARGUMENTS_REFUSED';

  constructor(
    readonly command: string,
    /** The offending member as QEMU names it ("file.size", "children[0]"); '' for the command itself. */
    readonly member: string,
    /** QEMU's own wording for the problem, e.g. "Parameter 'x' is unexpected". */
    readonly desc: string,
  ) {
    super(`${command}: refused by qmpx before sending, not by QEMU: ${desc}`);
  }
}
