/**
 * How a monitor's QMP socket is told to take file descriptors: off unless
 * `--accept-fds` or `"acceptFds": true`, and refused where it describes no
 * monitor.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildServeConfig, serveCommand } from '../../lib/cli/serve.js';
import { configFromJson, DEFAULT_ACCEPT_FDS } from '../../lib/proxy/config.js';
import { QmpxError } from '../../lib/errors.js';

async function parsed(args: string[]): Promise<Awaited<ReturnType<typeof buildServeConfig>>> {
  const command = serveCommand();
  let seen: Awaited<ReturnType<typeof buildServeConfig>> | undefined;
  command.action(async (qemuArgs: string[], options: Record<string, unknown>, self) => {
    seen = await buildServeConfig(options, qemuArgs, self);
  });
  await command.parseAsync(args, { from: 'user' });
  return seen!;
}

test('off by default; --accept-fds turns it on for the command line monitor', async () => {
  assert.is(DEFAULT_ACCEPT_FDS, false);
  assert.is((await parsed(['--upstream', '/x', '--qmp', '/y'])).monitors[0]!.acceptFds, undefined);
  assert.is((await parsed(['--upstream', '/x', '--qmp', '/y', '--accept-fds'])).monitors[0]!.acceptFds, true);
});

test('"acceptFds" is a per-monitor key of the config file; anything but a boolean is refused', () => {
  const loaded = configFromJson({ monitors: [{ upstream: '/a', qmp: '/b', acceptFds: true }, { upstream: '/c', qmp: '/d' }] }, 'serve.json');
  assert.equal(
    loaded.monitors.map((monitor) => monitor.acceptFds),
    [true, undefined],
  );
  assert.throws(() => configFromJson({ monitors: [{ upstream: '/a', qmp: '/b', acceptFds: 'yes' }] }, 'serve.json'), (error: unknown) => error instanceof QmpxError);
});

test('--accept-fds without a monitor of its own is refused', async () => {
  await buildServeConfig({ acceptFds: true, libvirt: '/l' }, []).then(
    () => assert.unreachable('accepted'),
    (error: unknown) => {
      assert.instance(error, QmpxError);
      assert.match((error as Error).message, /--accept-fds goes with --upstream or --launch/);
    },
  );
});

test.run();
