/**
 * An upstream that cannot be reached (a misspelt --upstream) is reported at
 * warn with its path and the error, again at attempts 2, 4, 8, ... (ever
 * less often, never once per attempt), while serve keeps retrying.
 */
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';
import { spawnServe } from './serve-process.js';

test('unreachable upstream: warned with the path and the error at attempts 1, 2, 4, 8', async () => {
  const dir = createTempDir('upstream-warn');
  const upstream = join(dir, 'misspelt.sock');
  const serve = spawnServe(['--upstream', upstream, '--qmp', socketPathIn(dir, 'vm.qmp'), '--log-level', 'debug']);
  try {
    await serve.waitForLog((line) => line.level === 40 && line.attempt === 8, 'the warning of attempt 8');
    const failures = serve.logs.filter((line) => line.upstream === upstream && typeof line.attempt === 'number');
    const warned = failures.filter((line) => line.level === 40);
    assert.equal(
      warned.map((line) => line.attempt),
      [1, 2, 4, 8],
    );
    assert.is(warned[0]!.msg, 'cannot connect to the upstream monitor; retrying');
    assert.is(warned[3]!.msg, 'still cannot connect to the upstream monitor; retrying');
    for (const line of warned) assert.match(line.err as string, new RegExp(`ENOENT.*${upstream.replaceAll('.', '\\.')}`));
    // The attempts between are logged at debug only.
    assert.equal(
      failures.filter((line) => line.level === 20).map((line) => line.attempt),
      [3, 5, 6, 7],
    );
  } finally {
    serve.child.kill('SIGTERM');
    await serve.exited;
    await removeTempDir(dir);
  }
});

test.run();
