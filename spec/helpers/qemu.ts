/**
 * A real, guest-less QEMU for a test file: the default peer in qmpx's specs.
 *
 *   const qemu = await startQemu();             // QMP on qemu.qmpPath, HMP on qemu.hmpPath
 *   try { ... connect(qemu.qmpPath) ... } finally { await qemu.stop(); }
 *
 * The command line follows docs/monitor-facts.md §1: `-machine none -nodefaults -display none
 * -S` (no guest, no KVM, paused in prelaunch), every monitor a UNIX socket
 * server with `wait=off` (without it QEMU blocks at start until a client
 * connects). `startQemu` resolves only once every monitor socket has
 * greeted a probe connection.
 *
 * This module is the one import for real-peer specs: it re-exports the guest
 * agent spawner and the raw socket client.
 */

import { spawnDaemon, findExecutable, DEFAULT_READY_TIMEOUT_MS, type Daemon } from './daemon.js';
import { createTempDir, removeTempDir, socketPathIn } from './temp-dir.js';

export { startQga, type QgaInstance, type QgaOptions } from './qga.js';
export { rawQmp, type RawClient, type RawClientOptions } from './raw-client.js';
export type { Daemon, ExitStatus } from './daemon.js';

/** What `startQemu` should run; every field is optional. */
export interface QemuOptions {
  /**
   * `'none'` (default): no buses, no CPU, fastest start. `'pc'`: `-machine pc
   * -accel tcg -m 64 -device qemu-xhci,id=xhci`, so `device_add
   * usb-kbd,id=kbd0` / `device_del kbd0` work and raise DEVICE_DELETED.
   */
  machine?: 'none' | 'pc';
  /** Serve QMP on `qmpPath` (default true). When false nothing listens there. */
  qmp?: boolean;
  /** Serve HMP on `hmpPath` (default true). When false nothing listens there. */
  hmp?: boolean;
  /**
   * Every QMP monitor prints multi-line pretty JSON (4-space indent, CRLF),
   * via `-chardev socket,... -mon chardev=...,mode=control,pretty=on`.
   */
  pretty?: boolean;
  /**
   * How many more QMP monitors to serve, on `extraQmpPaths` (default 0).
   * QEMU serves one client per monitor socket at a time (docs/monitor-facts.md §2); extra
   * sockets let one test hold several negotiated connections at once.
   */
  extraQmpSockets?: number;
  /** Appended to the command line, e.g. `['-device', 'usb-kbd,bus=xhci.0']`. */
  args?: readonly string[];
  /** The QEMU binary (a name looked up in PATH, or a path); default `qemu-system-x86_64`. */
  binary?: string;
  /** Deadline for all sockets to serve; default 10 s. */
  readyTimeoutMs?: number;
}

/** A running QEMU; see `Daemon` for `stop()`, `kill()` and the exit helpers. */
export interface QemuInstance extends Daemon {
  /** The main QMP socket (`DIR/qmp.sock`). */
  readonly qmpPath: string;
  /** The HMP text monitor socket (`DIR/hmp.sock`). */
  readonly hmpPath: string;
  /** Additional QMP sockets (`DIR/qmp-1.sock`, ...), `extraQmpSockets` of them. */
  readonly extraQmpPaths: readonly string[];
  /** The full QEMU command line, for failure messages. */
  readonly argv: readonly string[];
}

/**
 * Spawns QEMU in a fresh temp dir and resolves once its monitors serve.
 * Rejects when the binary is missing (naming the Debian package), when QEMU
 * exits during start (with its stderr), or after `readyTimeoutMs`.
 */
export async function startQemu(options: QemuOptions = {}): Promise<QemuInstance> {
  const binary = findExecutable(options.binary ?? 'qemu-system-x86_64', 'qemu-system-x86');
  const dir = createTempDir('qemu');
  try {
    const qmpPath = socketPathIn(dir, 'qmp.sock');
    const hmpPath = socketPathIn(dir, 'hmp.sock');
    const extraQmpPaths = Array.from({ length: options.extraQmpSockets ?? 0 }, (_, index) =>
      socketPathIn(dir, `qmp-${index + 1}.sock`),
    );
    const serveQmp = options.qmp ?? true;
    const serveHmp = options.hmp ?? true;
    const pretty = options.pretty ?? false;

    const args = ['-nodefaults', '-display', 'none', '-S', ...machineArgs(options.machine ?? 'none')];
    if (serveQmp) args.push(...(pretty ? qmpChardevArgs('qmp0', qmpPath, true) : qmpShorthandArgs(qmpPath)));
    extraQmpPaths.forEach((path, index) => args.push(...qmpChardevArgs(`qmp${index + 1}`, path, pretty)));
    if (serveHmp) args.push('-monitor', `unix:${escapeOptionValue(hmpPath)},server=on,wait=off`);
    args.push(...(options.args ?? []));

    const daemon = await spawnDaemon('qemu-system-x86_64', binary, args, dir);
    const servedPaths = [...(serveQmp ? [qmpPath] : []), ...extraQmpPaths, ...(serveHmp ? [hmpPath] : [])];
    const deadline = Date.now() + (options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
    try {
      // The HMP socket can appear after the QMP one (docs/monitor-facts.md §1): wait for each.
      for (const path of servedPaths) await daemon.waitUntilServing(path, true, deadline);
    } catch (error) {
      await daemon.kill();
      throw error;
    }
    return Object.assign(daemon, { qmpPath, hmpPath, extraQmpPaths, argv: [binary, ...args] });
  } catch (error) {
    await removeTempDir(dir);
    throw error;
  }
}

function machineArgs(machine: 'none' | 'pc'): string[] {
  return machine === 'pc'
    ? ['-machine', 'pc', '-accel', 'tcg', '-m', '64', '-device', 'qemu-xhci,id=xhci']
    : ['-machine', 'none'];
}

/** The main compact QMP monitor, exactly as docs/monitor-facts.md §1 starts it. */
function qmpShorthandArgs(socketPath: string): string[] {
  return ['-qmp', `unix:${escapeOptionValue(socketPath)},server=on,wait=off`];
}

/** The long form of a QMP monitor: needed for `pretty=on`, which only `-mon` takes, and for extra monitors. */
function qmpChardevArgs(chardevId: string, socketPath: string, pretty: boolean): string[] {
  return [
    '-chardev',
    `socket,id=${chardevId},path=${escapeOptionValue(socketPath)},server=on,wait=off`,
    '-mon',
    `chardev=${chardevId},mode=control${pretty ? ',pretty=on' : ''}`,
  ];
}

/** QEMU option values escape a literal comma by doubling it. */
function escapeOptionValue(value: string): string {
  return value.replaceAll(',', ',,');
}
