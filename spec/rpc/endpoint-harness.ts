/**
 * A libvirt endpoint in front of a real QEMU for the endpoint specs, plus
 * runners for Debian's virsh and /usr/bin/python3 (with libvirt-python)
 * pointed at it. Commands run with a deadline and report their exit code;
 * nothing waits by sleeping.
 */
import { execFile } from 'node:child_process';
import { connect, type Monitor } from '../../lib/monitor.js';
import { silentLogger } from '../../lib/log.js';
import type { Logger } from '../../lib/log.js';
import { startLibvirtEndpoint, type LibvirtDomain, type LibvirtEndpointOptions } from '../../lib/rpc/server.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';

/** The captures' domain: name, uuid and id as libvirtd reported them. */
export const DOMAIN_NAME = 'lab1';
export const DOMAIN_UUID = '3a167638-9b40-4ecb-9fad-87007c96f632';
export const DOMAIN_ID = 1;
export const COMMAND_DEADLINE_MS = 30_000;

/**
 * A logger that records what the endpoint logs, so a spec can wait for
 * "monitor event callback registered" instead of sleeping.
 */
export class LogWatch implements Logger {
  readonly lines: Array<{ level: string; message: string; fields: object }> = [];
  private waiters: Array<() => void> = [];
  readonly debug = (fields: object, message: string): void => this.add('debug', fields, message);
  readonly info = (fields: object, message: string): void => this.add('info', fields, message);
  readonly warn = (fields: object, message: string): void => this.add('warn', fields, message);
  readonly error = (fields: object, message: string): void => this.add('error', fields, message);

  private add(level: string, fields: object, message: string): void {
    this.lines.push({ level, message, fields });
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  count(message: string): number {
    return this.lines.filter((line) => line.message === message).length;
  }

  /** Resolves once `message` has been logged `times` times in all, or rejects after the deadline. */
  async waitFor(message: string, times = 1, deadlineMs = COMMAND_DEADLINE_MS): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    while (this.count(message) < times) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`"${message}" logged ${this.count(message)} times, expected ${times}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

export interface Endpoint {
  log: LogWatch;
  qemu: QemuInstance;
  /** The endpoint's own connection to QEMU (what the domain serves). */
  monitor: Monitor;
  /** A second QMP client on the same QEMU: "another client" causing events. */
  other: Monitor;
  socketPath: string;
  uri: string;
  domain: LibvirtDomain;
  close(): Promise<void>;
}

/** Starts QEMU (two QMP sockets), connects, and serves one domain on a fresh socket. */
export async function startEndpoint(
  options: Partial<Omit<LibvirtEndpointOptions, 'path' | 'domains'>> & { agentPath?: string; logger?: Logger; qemuArgs?: string[] } = {},
): Promise<Endpoint> {
  const { qemuArgs, ...endpointOptions } = options;
  const qemu = await startQemu({ extraQmpSockets: 1, args: qemuArgs ?? [] });
  const dir = createTempDir('libvirt-endpoint');
  const monitor = await connect(qemu.qmpPath, { logger: silentLogger });
  const other = await connect(qemu.extraQmpPaths[0]!, { logger: silentLogger });
  const domain: LibvirtDomain = { name: DOMAIN_NAME, uuid: DOMAIN_UUID, id: DOMAIN_ID, monitor, agentPath: options.agentPath };
  const socketPath = socketPathIn(dir, 'libvirt.sock');
  const log = new LogWatch();
  const endpoint = await startLibvirtEndpoint({ ...endpointOptions, logger: options.logger ?? log, path: socketPath, domains: () => [domain] });
  return {
    log,
    qemu,
    monitor,
    other,
    socketPath,
    uri: `qemu+unix:///system?socket=${socketPath}`,
    domain,
    async close() {
      await endpoint.close();
      await monitor.close();
      await other.close();
      await qemu.stop();
      await removeTempDir(dir);
    },
  };
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion (deadline COMMAND_DEADLINE_MS); resolves with its exit code and output. */
export function run(file: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    execFile(file, [...args], { timeout: COMMAND_DEADLINE_MS, env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') {
        reject(new Error(`${file} ${args.join(' ')}: ${error.message}\n${stderr}`));
        return;
      }
      resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
  });
}

/** `virsh -c URI ARGS...`. */
export function virsh(endpoint: Endpoint, ...args: string[]): Promise<CommandResult> {
  return run('virsh', ['-c', endpoint.uri, ...args], { ...process.env, LC_ALL: 'C' });
}

/** Debian's python with libvirt-python, not the pyenv one on PATH. */
export const SYSTEM_PYTHON = '/usr/bin/python3';
