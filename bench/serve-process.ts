/**
 * `qmpx serve` as a child process of a benchmark, with its resident memory
 * and CPU read from /proc: the proxy and client suites measure through it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, residentMiB } from './proc.js';

const MAIN = fileURLToPath(new URL('../lib/cli/main.js', import.meta.url));

/** `qmpx serve` as a child process; resolves once `ready` upstream links are up. */
export class ServeProcess {
  private logText = '';
  private connected = 0;
  private waiters: Array<() => void> = [];

  private constructor(readonly child: ChildProcess) {
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      this.logText += text;
      const lines = this.logText.split('\n');
      this.logText = lines.pop()!;
      for (const line of lines) if (line.includes('"msg":"upstream monitor connected"')) this.connected++;
      for (const waiter of this.waiters.splice(0)) waiter();
    });
  }

  static async start(args: string[], ready: number): Promise<ServeProcess> {
    const child = spawn(process.execPath, [MAIN, 'serve', '--log-level', 'info', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    const serve = new ServeProcess(child);
    const deadline = Date.now() + 120_000;
    while (serve.connected < ready) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`serve did not come up (${serve.connected}/${ready} upstreams)`);
      await new Promise<void>((resolve) => {
        serve.waiters.push(resolve);
        setTimeout(resolve, 1000).unref();
      });
    }
    return serve;
  }

  /** Resident set size, from /proc. */
  rssMiB(): number {
    return residentMiB(this.child.pid!);
  }

  /** User + system CPU seconds used so far, from /proc. */
  cpuSeconds(): number {
    return cpuSeconds(this.child.pid!);
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}
