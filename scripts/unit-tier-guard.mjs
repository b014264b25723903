/**
 * Preloaded (`node --import`) into every spec of the unit tier by
 * scripts/run-specs.mjs --unit: a unit spec may start Node and nothing else,
 * so one that reaches for QEMU, qemu-ga, virsh, python3, go, socat or tmux
 * fails at once with a message naming the program, instead of passing here
 * and failing on a machine that has only Node. The binaries are refused
 * even where they are installed (the spec helpers also look outside PATH).
 */
import childProcess from 'node:child_process';
import { basename } from 'node:path';
import { syncBuiltinESMExports } from 'node:module';

const NODE_NAMES = new Set([process.execPath, 'node', basename(process.execPath)]);

function refuse(command) {
  throw new Error(
    `unit tier: this spec started ${JSON.stringify(command)}; unit specs may start only Node ` +
      '(move the spec out of UNIT_SPECS in scripts/run-specs.mjs if it needs QEMU or another program)',
  );
}

for (const name of ['spawn', 'spawnSync', 'execFile', 'execFileSync']) {
  const original = childProcess[name];
  childProcess[name] = function guarded(command, ...rest) {
    const options = rest.find((arg) => arg !== null && typeof arg === 'object' && !Array.isArray(arg));
    if (!NODE_NAMES.has(command) || options?.shell) refuse(command);
    return original.call(this, command, ...rest);
  };
}
// A shell command line could start anything.
for (const name of ['exec', 'execSync']) {
  childProcess[name] = (command) => refuse(command);
}
// ESM `import { spawn } from 'node:child_process'` sees the guarded functions too.
syncBuiltinESMExports();
