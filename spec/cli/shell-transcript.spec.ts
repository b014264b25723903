/**
 * `qmpx shell -v -l FILE`: the JSON of each command is printed before its
 * reply, and the transcript file keeps each line typed (after its prompt),
 * what was sent and the reply, without colours. `--agent` talks to a guest
 * agent's socket. Lines come from a pipe here; the terminal behaviour is
 * spec/cli/shell.spec.ts's.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startQemu, startQga } from '../helpers/qemu.js';
import { createTempDir, removeTempDir } from '../helpers/temp-dir.js';
import { runQmpx } from './cli-process.js';

const STATUS = '{"return":{"status":"prelaunch","singlestep":false,"running":false}}';

test('-v prints the JSON sent; -l keeps the transcript (QMP and HMP lines)', async () => {
  const qemu = await startQemu();
  const dir = createTempDir('shell-log');
  try {
    const log = join(dir, 'session.log');
    const result = await runQmpx(['shell', '-v', '-l', log, qemu.qmpPath], { input: 'query-status\nqom-get path=/machine property=type\n/hmp\ninfo status\n' });
    assert.is(result.code, 0, result.stderr);
    const sentStatus = '{"execute":"query-status"}';
    const sentQom = '{"execute":"qom-get","arguments":{"path":"/machine","property":"type"}}';
    assert.is(result.stdout, `${sentStatus}\n${STATUS}\n${sentQom}\n{"return":"none-machine"}\nVM status: paused (prelaunch)\n`);
    assert.is(
      await readFile(log, 'utf8'),
      `(QEMU) query-status\n${sentStatus}\n${STATUS}\n(QEMU) qom-get path=/machine property=type\n${sentQom}\n{"return":"none-machine"}\n(qemu) info status\nVM status: paused (prelaunch)\n`,
    );
  } finally {
    await qemu.stop();
    await removeTempDir(dir);
  }
});

test('--agent: a guest agent socket, with -v', async () => {
  const qga = await startQga();
  try {
    const result = await runQmpx(['shell', '--agent', '-v', qga.qgaPath], { input: 'guest-ping\n' });
    assert.is(result.code, 0, result.stderr);
    assert.is(result.stdout, '{"execute":"guest-ping"}\n{"return":{}}\n');
  } finally {
    await qga.stop();
  }
});

test.run();
