import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, QmpError, silentLogger, type Monitor } from '../../lib/index.js';
import { schemaChecksFor, type SchemaChecks } from '../../lib/qapi/validate.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';
import { generateCases, safeCommands, type GeneratedCase } from './argument-generator.js';

const test = suite<{ qemu: QemuInstance }>('differential check: qmpx validation against QEMU 7.2 answers');

test.before(async (context) => {
  context.qemu = await startQemu();
});

test.after(async (context) => {
  await context.qemu.stop();
});

/** QEMU's input visitor's words for arguments it does not take (GenericError), as QEMU 7.2 answers them. */
const ARGUMENT_ERROR = [/^Parameter '.*' is missing$/, /^Parameter '.*' is unexpected$/, /^Invalid parameter type for '.*', expected: /, /^Parameter '.*' does not accept value /, /^Parameter '.*' expects /];

interface Verdict {
  refused: boolean;
  desc: string;
}

async function qemuVerdict(monitor: Monitor, generated: GeneratedCase): Promise<Verdict> {
  try {
    await monitor.execute<unknown>(generated.command, generated.args, { validate: 'off', timeoutMs: 20_000 });
    return { refused: false, desc: '' };
  } catch (error) {
    if (!(error instanceof QmpError)) throw error;
    return { refused: error.errorClass === 'GenericError' && ARGUMENT_ERROR.some((pattern) => pattern.test(error.desc)), desc: error.desc };
  }
}

function qmpxVerdict(checks: SchemaChecks, generated: GeneratedCase): Verdict {
  const problem = checks.problemWith(generated.command, generated.args);
  return { refused: problem !== undefined, desc: problem?.desc ?? '' };
}

test('>= 1,000 generated argument objects for >= 100 safe commands: qmpx and QEMU agree on >= 99%', async ({ qemu }) => {
  const monitor = await connect(qemu.qmpPath, { logger: silentLogger });
  try {
    const checks = await schemaChecksFor(await monitor.execute('query-qmp-schema'));
    const commands = safeCommands(checks.schema);
    const cases = commands.flatMap((command) => generateCases(checks.schema, command));
    assert.ok(commands.length >= 100, `${commands.length} commands`);
    assert.ok(cases.length >= 1000, `${cases.length} argument objects`);
    const disagreements: string[] = [];
    let bothRefused = 0;
    let sameWords = 0;
    const otherWords: string[] = [];
    const byKind = new Map<string, number>();
    for (const generated of cases) {
      byKind.set(generated.kind, (byKind.get(generated.kind) ?? 0) + 1);
      const ours = qmpxVerdict(checks, generated);
      const theirs = await qemuVerdict(monitor, generated);
      if (ours.refused !== theirs.refused) {
        disagreements.push(`${generated.command} [${generated.kind} ${generated.where}] qmpx: ${ours.desc || 'accepted'} | QEMU: ${theirs.desc || 'accepted'}`);
      } else if (ours.refused) {
        bothRefused++;
        if (ours.desc === theirs.desc) sameWords++;
        else otherWords.push(`${generated.command} [${generated.kind} ${generated.where}] qmpx: ${ours.desc} | QEMU: ${theirs.desc}`);
      }
    }
    const agreement = (cases.length - disagreements.length) / cases.length;
    console.log(
      `  ${cases.length} objects for ${commands.length} commands (${[...byKind].map(([kind, count]) => `${kind} ${count}`).join(', ')}); ` +
        `agreement ${(agreement * 100).toFixed(2)}%; both refused ${bothRefused}, in the same words ${sameWords}`,
    );
    for (const line of disagreements) console.log(`  disagreement: ${line}`);
    for (const line of otherWords) console.log(`  other words: ${line}`);
    assert.ok(agreement >= 0.99, `agreement ${(agreement * 100).toFixed(2)}%:\n${disagreements.join('\n')}`);
    assert.ok(sameWords >= bothRefused * 0.9, `same words in ${sameWords} of ${bothRefused} refusals`);
  } finally {
    await monitor.close();
  }
});

test.run();
