/**
 * Human-monitor benchmark (issue: HMP client): sequential `info status`
 * round trips on a raw HMP socket, qmpx against a plain raw-socket client on
 * the same QEMU in the same run, interleaved rounds. QEMU serves one client
 * per monitor socket, so each round connects, measures and disconnects.
 *
 *   node dist/bench/hmp.bench.js
 */
import net from 'node:net';
import { pathToFileURL } from 'node:url';
import { connect, silentLogger } from '../lib/index.js';
import { startQemu } from '../spec/helpers/qemu.js';
import { interleaved, median, reportResults, type BenchResult } from './measure.js';

const ROUNDS = 9;
const SEQUENTIAL = 1000;
const WARM_UP = 200;
const PROMPT = '(qemu) ';
const ECHO_END = '\x1b[K\r\n';

/**
 * The reference: what anyone would write against an HMP socket. Accumulate
 * text until it ends with the prompt, then cut the output from behind the
 * echo. No validation, no queue, no state.
 */
class RawHmpClient {
  private text = '';
  private waiter: ((text: string) => void) | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.text += chunk;
      if (this.waiter && this.text.endsWith(PROMPT)) {
        const waiter = this.waiter;
        const text = this.text;
        this.waiter = undefined;
        this.text = '';
        waiter(text);
      }
    });
  }

  static async open(path: string): Promise<RawHmpClient> {
    const socket = net.createConnection(path);
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const client = new RawHmpClient(socket);
    await client.untilPrompt();
    return client;
  }

  async command(line: string): Promise<string> {
    const reply = this.untilPrompt();
    this.socket.write(`${line}\n`);
    const text = await reply;
    return text.slice(text.indexOf(ECHO_END) + ECHO_END.length, -PROMPT.length);
  }

  close(): void {
    this.socket.destroy();
  }

  private untilPrompt(): Promise<string> {
    if (this.text.endsWith(PROMPT)) {
      const text = this.text;
      this.text = '';
      return Promise.resolve(text);
    }
    return new Promise((resolve) => (this.waiter = resolve));
  }
}

/** One round: SEQUENTIAL round trips after a warm-up; returns the median in µs. */
async function sequentialMedianMicros(path: string, client: 'hmp()' | 'execute()' | 'raw'): Promise<number> {
  const samples: number[] = [];
  const expected = 'VM status: paused (prelaunch)';
  if (client === 'raw') {
    const raw = await RawHmpClient.open(path);
    for (let i = 0; i < WARM_UP + SEQUENTIAL; i++) {
      const started = performance.now();
      const output = await raw.command('info status');
      if (i >= WARM_UP) samples.push(performance.now() - started);
      if (!output.startsWith(expected)) throw new Error(`raw client: unexpected output ${JSON.stringify(output)}`);
    }
    raw.close();
  } else {
    const monitor = await connect(path, { logger: silentLogger });
    if (monitor.protocol !== 'hmp') throw new Error(`expected an HMP monitor, got ${monitor.protocol}`);
    for (let i = 0; i < WARM_UP + SEQUENTIAL; i++) {
      const started = performance.now();
      const status = client === 'hmp()' ? await monitor.hmp('info status') : ((await monitor.execute<{ status: string }>('query-status')).status);
      if (i >= WARM_UP) samples.push(performance.now() - started);
      if (!status.startsWith(client === 'hmp()' ? expected : 'prelaunch')) throw new Error(`qmpx: unexpected output ${JSON.stringify(status)}`);
    }
    await monitor.close();
  }
  return median(samples) * 1000;
}

export async function run(): Promise<BenchResult[]> {
  const qemu = await startQemu({ qmp: false });
  const results: BenchResult[] = [];
  try {
    for (const client of ['hmp()', 'execute()'] as const) {
      const measured = await interleaved(
        ROUNDS,
        () => sequentialMedianMicros(qemu.hmpPath, client),
        () => sequentialMedianMicros(qemu.hmpPath, 'raw'),
      );
      const what = client === 'hmp()' ? "hmp('info status')" : "execute('query-status') mapped to info status";
      results.push({
        name: `HMP sequential ${SEQUENTIAL}, ${what}, median`,
        qmpx: measured.qmpx,
        raw: measured.raw,
        unit: 'µs',
        ratio: measured.qmpx / measured.raw,
        note: `lower is better; target ≤ 1.20; median of ${ROUNDS} interleaved rounds; round ratios ${measured.qmpxRounds
          .map((qmpx, round) => (qmpx / measured.rawRounds[round]!).toFixed(2))
          .join(' ')}`,
      });
    }
  } finally {
    await qemu.stop();
  }
  return results;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await reportResults('HMP', await run());
}
