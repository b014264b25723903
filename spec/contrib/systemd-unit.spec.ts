/**
 * contrib/qmpx.service: systemd accepts it (`systemd-analyze verify`, with
 * ExecStart pointed at this checkout's CLI, since verify checks that the
 * program exists), it reloads with SIGHUP, and it keeps the hardening the
 * README promises.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CLI_PATH, REPO_ROOT } from '../cli/cli-process.js';

const execFileAsync = promisify(execFile);
const UNIT = readFileSync(join(REPO_ROOT, 'contrib', 'qmpx.service'), 'utf8');

/** The values of `key=` lines of the unit. */
function settings(key: string): string[] {
  return UNIT.split('\n')
    .filter((line) => line.startsWith(`${key}=`))
    .map((line) => line.slice(key.length + 1));
}

test('systemd-analyze verify accepts the unit', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qmpx-unit-'));
  try {
    const unitPath = join(dir, 'qmpx.service');
    const [execStart] = settings('ExecStart');
    assert.match(execStart!, /^\/usr\/local\/bin\/qmpx serve --config /);
    writeFileSync(unitPath, UNIT.replace('/usr/local/bin/qmpx', `${process.execPath} ${CLI_PATH}`));
    const { stdout, stderr } = await execFileAsync('systemd-analyze', ['verify', unitPath]);
    assert.is(stdout + stderr, '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('reload is SIGHUP; stopping signals serve alone', () => {
  assert.equal(settings('ExecReload'), ['/bin/kill -HUP $MAINPID']);
  assert.equal(settings('KillMode'), ['mixed']);
});

test('the hardening the README names', () => {
  const expected: Record<string, string> = {
    NoNewPrivileges: 'yes',
    ProtectSystem: 'strict',
    ProtectHome: 'yes',
    PrivateTmp: 'yes',
    PrivateDevices: 'yes',
    RestrictAddressFamilies: 'AF_UNIX AF_INET AF_INET6',
    CapabilityBoundingSet: '',
    SystemCallFilter: '@system-service',
  };
  for (const [key, value] of Object.entries(expected)) assert.equal(settings(key), [value], key);
  assert.equal(settings('MemoryDenyWriteExecute'), [], 'Node cannot run with MemoryDenyWriteExecute');
});

test.run();
