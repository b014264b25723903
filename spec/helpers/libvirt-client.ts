/**
 * A real libvirt client (Debian's libvirt-python) that connects to a
 * libvirt socket and holds the connection open until told to end: for
 * specs that look at connected clients (status, metrics).
 */
import { spawn } from 'node:child_process';

/** A libvirt-python client holding one connection open on `uri` until its stdin ends. */
export interface HeldLibvirtClient {
  pid: number;
  /** Ends the client and waits for it to exit. */
  close(): Promise<void>;
}

const HOLD_CONNECTION = 'import libvirt, sys\nc = libvirt.open(sys.argv[1])\nprint("ready", flush=True)\nsys.stdin.read()\nc.close()\n';
const PYTHON_READY_WITHIN_MS = 10_000;

export async function holdLibvirtConnection(socket: string): Promise<HeldLibvirtClient> {
  const child = spawn('/usr/bin/python3', ['-c', HOLD_CONNECTION, `qemu+unix:///system?socket=${socket}`], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const close = async (): Promise<void> => {
    child.stdin.end();
    await exited;
  };
  let output = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`libvirt-python did not connect to ${socket} within ${PYTHON_READY_WITHIN_MS} ms`)), PYTHON_READY_WITHIN_MS);
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        output += chunk;
        if (output.includes('ready\n')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        reject(new Error(`libvirt-python exited (${code}) before connecting to ${socket}`));
      });
    });
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return { pid: child.pid!, close };
}
