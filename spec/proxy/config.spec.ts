/**
 * `serve` configuration: the JSON file (ajv-checked shape and the rules a
 * schema cannot state) and how command-line options merge with it.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildServeConfig, serveCommand } from '../../lib/cli/serve.js';
import { configFromJson, loadConfigFile, parseSocketMode } from '../../lib/proxy/config.js';
import { QmpxError } from '../../lib/errors.js';
import { createTempDir, removeTempDir } from '../helpers/temp-dir.js';

function throwsQmpx(run: () => unknown, pattern: RegExp): void {
  try {
    run();
  } catch (error) {
    assert.instance(error, QmpxError);
    assert.match((error as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected an error matching ${pattern}`);
}

test('a full config file gets its defaults', () => {
  const config = configFromJson(
    {
      logLevel: 'debug',
      socketMode: '0660',
      audit: { path: '/var/log/a.ndjson' },
      monitors: [
        { name: 'vm1', upstream: '/run/vm1/qmp.sock', qmp: '/run/q/vm1.qmp', readOnly: '/run/q/vm1.ro' },
        { launch: { args: ['-m', '64'], restart: true }, hmp: '/run/q/lab.hmp', socketMode: 384, maxClientBufferBytes: 65536 },
      ],
    },
    'test.json',
  );
  assert.is(config.logLevel, 'debug');
  assert.equal(config.audit, { path: '/var/log/a.ndjson', arguments: false });
  assert.is(config.monitors[0]!.socketMode, 0o660);
  assert.is(config.monitors[0]!.maxClientBufferBytes, 8 * 1024 * 1024);
  assert.is(config.monitors[1]!.socketMode, 0o600);
  assert.equal(config.monitors[1]!.launch, { args: ['-m', '64'], binary: undefined, env: undefined, restart: true });
});

test('shape errors name the file and the problem', () => {
  throwsQmpx(() => configFromJson({}, 'a.json'), /a\.json: invalid config: .*monitors/);
  throwsQmpx(() => configFromJson({ monitors: [{ upstream: '/x', qmp: '/y', extra: 1 }] }, 'a.json'), /additional properties/);
  throwsQmpx(() => configFromJson({ monitors: [{ upstream: '/x', launch: {}, qmp: '/y' }] }, 'a.json'), /exactly one of upstream and launch/);
  throwsQmpx(() => configFromJson({ monitors: [{ qmp: '/y' }] }, 'a.json'), /exactly one of upstream and launch/);
  throwsQmpx(() => configFromJson({ socketMode: '999', monitors: [{ upstream: '/x', qmp: '/y' }] }, 'a.json'), /invalid config/);
});

test('rules beyond the schema: a socket per monitor, no path twice, unique names', () => {
  throwsQmpx(() => configFromJson({ monitors: [{ upstream: '/x' }] }, 'a.json'), /no downstream socket/);
  throwsQmpx(() => configFromJson({ monitors: [{ upstream: '/x', qmp: '/y', hmp: '/y' }] }, 'a.json'), /\/y is also/);
  throwsQmpx(
    () => configFromJson({ monitors: [{ upstream: '/a', qmp: '/b' }, { upstream: '/c', qmp: '/a' }] }, 'a.json'),
    /\/a is also monitor 1 upstream/,
  );
  throwsQmpx(
    () => configFromJson({ monitors: [{ name: 'n', upstream: '/a', qmp: '/b' }, { name: 'n', upstream: '/c', qmp: '/d' }] }, 'a.json'),
    /two monitors are named "n"/,
  );
  throwsQmpx(() => configFromJson({ monitors: [{ upstream: '/x', qmp: '/y', agent: '/g' }] }, 'a.json'), /agent is used by the libvirt endpoint only/);
  throwsQmpx(() => configFromJson({ monitors: [{ upstream: '/x', libvirt: '/y', agent: '/x' }] }, 'a.json'), /agent path \/x is also/);
  const readOnlyOnly = configFromJson({ monitors: [{ upstream: '/x', libvirtReadOnly: '/r', agent: '/g' }] }, 'a.json');
  assert.equal([readOnlyOnly.monitors[0]!.libvirtReadOnly, readOnlyOnly.monitors[0]!.agent], ['/r', '/g']);
});

test('socket modes: octal text or a number', () => {
  assert.is(parseSocketMode('0600'), 0o600);
  assert.is(parseSocketMode('660'), 0o660);
  assert.is(parseSocketMode(0o640), 0o640);
  throwsQmpx(() => parseSocketMode('0800'), /invalid socket mode/);
});

test('loading a file: JSON errors and missing files are reported', async () => {
  const dir = createTempDir('config');
  const bad = join(dir, 'bad.json');
  await writeFile(bad, '{"monitors": [');
  await loadConfigFile(bad).then(
    () => assert.unreachable('accepted'),
    (error: Error) => assert.match(error.message, /bad\.json: not valid JSON/),
  );
  await loadConfigFile(join(dir, 'missing.json')).then(
    () => assert.unreachable('accepted'),
    (error: Error) => assert.match(error.message, /cannot read config/),
  );
  const good = join(dir, 'good.json');
  await writeFile(good, JSON.stringify({ logLevel: 'warn', monitors: [{ upstream: '/a', qmp: '/b' }] }));
  const config = await buildServeConfig({ config: good, upstream: '/c', qmp: '/d', name: 'extra' }, []);
  assert.equal(config.monitors.map((monitor) => monitor.upstream), ['/a', '/c']);
  assert.is(config.logLevel, 'info', 'the command line default applies when no command object says otherwise');
  const layered = join(dir, 'layered.json');
  await writeFile(
    layered,
    JSON.stringify({
      socketMode: '0640',
      maxClientBufferBytes: 10_000,
      monitors: [
        { upstream: '/a', qmp: '/b' },
        { upstream: '/c', qmp: '/d', socketMode: '0600', maxClientBufferBytes: 20_000 },
      ],
    }),
  );
  const fileOnly = await buildServeConfig({ config: layered }, []);
  assert.equal(fileOnly.monitors.map((monitor) => [monitor.socketMode, monitor.maxClientBufferBytes]), [[0o640, 10_000], [0o600, 20_000]]);
  const flagged = await buildServeConfig({ config: layered, socketMode: 0o660, maxClientBuffer: 30_000 }, []);
  assert.equal(
    flagged.monitors.map((monitor) => [monitor.socketMode, monitor.maxClientBufferBytes]),
    [[0o660, 30_000], [0o600, 20_000]],
    '--socket-mode and --max-client-buffer win over the top level, not over a monitor’s own',
  );
  await removeTempDir(dir);
});

test('command-line options: one monitor, --launch takes the QEMU arguments after --', async () => {
  const command = serveCommand();
  let seen: unknown;
  command.action(async (qemuArgs: string[], options: Record<string, unknown>, self) => {
    seen = await buildServeConfig(options, qemuArgs, self);
  });
  await command.parseAsync(
    ['--launch', '--qmp', '/tmp/q.sock', '--socket-mode', '0640', '--max-client-buffer', '2MiB', '--env', 'TMPDIR=/var/tmp', '--env', 'A=b=c', '--', '-m', '64', '-name', 'x'],
    { from: 'user' },
  );
  const config = seen as Awaited<ReturnType<typeof buildServeConfig>>;
  assert.equal(config.monitors[0]!.launch, { args: ['-m', '64', '-name', 'x'], binary: undefined, env: { TMPDIR: '/var/tmp', A: 'b=c' }, restart: false });
  assert.is(config.monitors[0]!.socketMode, 0o640);
  assert.is(config.monitors[0]!.maxClientBufferBytes, 2 * 1024 * 1024);
  await buildServeConfig({ upstream: '/a', launch: true, qmp: '/b' }, []).then(
    () => assert.unreachable('accepted both'),
    (error: Error) => assert.match(error.message, /either --upstream or --launch/),
  );
  await buildServeConfig({ upstream: '/a', qmp: '/b', env: { A: 'b' } }, []).then(
    () => assert.unreachable('accepted --env without --launch'),
    (error: Error) => assert.match(error.message, /--env go with --launch/),
  );
  await buildServeConfig({ upstream: '/a', qmp: '/b' }, ['-m', '64']).then(
    () => assert.unreachable('accepted QEMU arguments without --launch'),
    (error: Error) => assert.match(error.message, /only taken with --launch/),
  );
  await buildServeConfig({ qmp: '/b' }, []).then(
    () => assert.unreachable('accepted nothing to serve'),
    (error: Error) => assert.match(error.message, /nothing to serve/),
  );
  await buildServeConfig({ upstream: '/a' }, []).then(
    () => assert.unreachable('accepted a monitor without sockets'),
    (error: Error) => assert.match(error.message, /no downstream socket/),
  );
});

test.run();
