/**
 * libvirt RPC clients qmpx's authors did not write, against one `serve`
 * libvirt socket in front of two real QEMUs: Debian's go-libvirt
 * (ConnectOpen, ConnectListAllDomains, DomainGetState) and go-qemu's
 * `qmp.NewLibvirtRPCMonitor` (a QMP command through libvirt's QEMU
 * program), built offline by spec/interop/go-libvirt/build.sh.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { MonitorConfig } from '../../lib/proxy/config.js';
import { startServe, type ServeHandle } from '../../lib/proxy/daemon.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';
import { RecordingLogger, eventually } from '../proxy/harness.js';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const UUIDS = ['1b4e28ba-2fa1-41d2-883f-0016d3cca427', '6f1e4f7a-1c55-4a43-9d3b-5a1c9d3e2b10'];
let client: string;
let dir: string;
let qemus: QemuInstance[] = [];
let handle: ServeHandle;
let socket: string;

test.before(async () => {
  const built = await run('sh', [`${REPO}spec/interop/go-libvirt/build.sh`]);
  client = built.stdout.trim();
  dir = createTempDir('go-libvirt');
  qemus = await Promise.all(UUIDS.map((uuid) => startQemu({ args: ['-uuid', uuid] })));
  socket = socketPathIn(dir, 'libvirt.sock');
  const monitors: MonitorConfig[] = qemus.map((qemu, index) => ({
    name: `vm${index + 1}`,
    upstream: qemu.qmpPath,
    qmp: socketPathIn(dir, `qmp${index + 1}.sock`),
    socketMode: 0o600,
    maxClientBufferBytes: 8 * 1024 * 1024,
  }));
  handle = await startServe({ logLevel: 'debug', monitors, libvirt: { path: socket, socketMode: 0o600 } }, { logger: new RecordingLogger() });
  for (const proxy of handle.proxies) await proxy.upstream.whenUp();
  // QEMU's -uuid is looked up once each link is up.
  await eventually(
    () => handle.proxies.every((proxy, index) => {
      const domain = proxy.libvirtDomain(index + 1);
      return 'active' in domain && domain.active.uuid === UUIDS[index];
    }),
    'both uuids from -uuid',
  );
});

test.after(async () => {
  await handle?.stop();
  await Promise.all(qemus.map((qemu) => qemu.stop()));
  await removeTempDir(dir);
});

test('go-libvirt lists the domains and reads their states; go-qemu runs query-status through NewLibvirtRPCMonitor', async () => {
  const { stdout } = await run(client, ['-socket', socket, '-domain', 'vm2', '{"execute":"query-status"}', '{"execute":"query-name"}'], { timeout: 60_000 });
  assert.is(
    stdout,
    [
      `domain vm1 1 ${UUIDS[0]}`,
      `domain vm2 2 ${UUIDS[1]}`,
      'state vm1 3',
      'state vm2 3',
      'reply {"return":{"status":"prelaunch","singlestep":false,"running":false},"id":"libvirt-1"}',
      'reply {"return":{},"id":"libvirt-2"}',
      '',
    ].join('\n'),
  );
});

test.run();
