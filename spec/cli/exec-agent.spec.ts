/**
 * `qmpx exec --agent`: a guest agent's socket (a real qemu-ga), which sends
 * no greeting, is talked to as one; without --agent the missing greeting
 * names the agent among its likely causes.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startQga } from '../helpers/qemu.js';
import { runQmpx } from './cli-process.js';

test('exec --agent: guest-ping, --return-value, an error reply (exit 1); --hmp refused', async () => {
  const qga = await startQga();
  try {
    const ping = await runQmpx(['exec', '--agent', qga.qgaPath, 'guest-ping']);
    assert.equal([ping.code, ping.stdout], [0, '{"return":{}}\n']);
    const info = await runQmpx(['exec', '--agent', qga.qgaPath, '--return-value', 'guest-info']);
    assert.is(info.code, 0);
    assert.match(info.stdout, /^\{"version":"\d+\.\d+\.\d+","supported_commands":\[/);
    const unknown = await runQmpx(['exec', '--agent', qga.qgaPath, 'guest-nope']);
    assert.equal([unknown.code, unknown.stdout], [1, '{"error":{"class":"CommandNotFound","desc":"The command guest-nope has not been found"}}\n']);
    const hmp = await runQmpx(['exec', '--agent', '--hmp', qga.qgaPath, 'info', 'status']);
    assert.is(hmp.code, 1);
    assert.match(hmp.stderr, /--hmp cannot be combined with --agent/);
  } finally {
    await qga.stop();
  }
});

test('exec without --agent on an agent socket: no greeting, and the agent is named as a likely cause', async () => {
  const qga = await startQga();
  try {
    const result = await runQmpx(['exec', '--timeout', '0.5', qga.qgaPath, 'guest-ping']);
    assert.is(result.code, 2);
    assert.match(result.stderr, /a guest-agent socket never greets/);
  } finally {
    await qga.stop();
  }
});

test.run();
