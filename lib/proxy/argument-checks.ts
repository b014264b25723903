/**
 * A client's arguments checked against the upstream QEMU's schema before
 * they are forwarded (a monitor's `validate: 'reject'`): the problem QEMU's
 * input visitor would report, in its words, or undefined.
 *
 * The arguments arrive as QEMU's parser reads them, number tokens as
 * written; the check wants plain values. What QAPI can tell of a number is
 * only whether QEMU holds it as an integer or as a double, so that is what
 * the conversion keeps: an integer token within int64 or uint64 stays an
 * integer (a bigint past ±2^53), and every other number (a float token,
 * `1.0` included, or an integer QEMU's parser can only hold as a double) is
 * a double that is not integral, which an `int` member refuses and a
 * `number` member takes, as in QEMU.
 */
import type { ArgumentProblem, SchemaChecks } from '../qapi/validate.js';
import { numberFromToken } from '../qemu-json/numbers.js';
import type { QValue } from '../qemu-json/parser.js';

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;
/** Stands for any double QEMU parsed: finite and not integral. */
const A_DOUBLE = 0.5;

/** What QEMU would refuse in `command`'s arguments, or undefined when it takes them (or does not know the command). */
export function argumentProblem(checks: SchemaChecks, command: string, args: QValue | undefined): ArgumentProblem | undefined {
  // QEMU has refused arguments that are not an object before they get here (lib/proxy/qmp-request.ts).
  return checks.problemWith(command, args?.kind === 'object' ? plainObject(args.members) : undefined);
}

function plainObject(members: Map<string, QValue>): object {
  // fromEntries defines each member as its own property, `__proto__` included.
  return Object.fromEntries([...members].map(([name, member]) => [name, plainValue(member)]));
}

function plainValue(value: QValue): unknown {
  switch (value.kind) {
    case 'object':
      return plainObject(value.members);
    case 'array':
      return value.items.map(plainValue);
    case 'string':
    case 'boolean':
      return value.value;
    case 'null':
      return null;
    case 'number':
      return numberValue(value.token, value.float);
  }
}

function numberValue(token: string, float: boolean): number | bigint {
  if (float) return A_DOUBLE;
  const integer = BigInt(token);
  if (integer < INT64_MIN || integer > UINT64_MAX) return A_DOUBLE;
  return numberFromToken(token);
}
