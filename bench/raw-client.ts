/**
 * The reference: a plain raw-socket QMP client, about what anyone would write
 * in an afternoon. It reads the greeting, negotiates, writes commands and
 * counts reply lines. qmpx is measured against it on the same QEMU, same run.
 */
import net from 'node:net';
import { allOrders, median } from './measure.js';

export class RawQmpClient {
  private buffered = '';
  private waiters: Array<{ lines: number; resolve: (lines: string[]) => void }> = [];
  private received: string[] = [];
  /** While set, lines are counted (and parsed when asked), not kept: floods. */
  private counter: { remaining: number; parse: boolean; resolve: () => void } | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => this.onData(chunk));
  }

  /** Connects, reads the greeting and negotiates (with oob when asked). */
  static async open(path: string, oob: boolean): Promise<RawQmpClient> {
    const socket = net.createConnection(path);
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const client = new RawQmpClient(socket);
    await client.next(1);
    socket.write(oob ? '{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}\n' : '{"execute":"qmp_capabilities"}\n');
    await client.next(1);
    return client;
  }

  /** Writes text as is. */
  write(text: string): void {
    this.socket.write(text);
  }

  /** Resolves with the next `count` complete lines. */
  next(count: number): Promise<string[]> {
    return new Promise((resolve) => {
      this.waiters.push({ lines: count, resolve });
      this.deliver();
    });
  }

  /**
   * Resolves once `count` more lines have arrived, keeping none of them;
   * `parse`: JSON.parse each, as a client that reads events must.
   */
  countLines(count: number, parse = false): Promise<void> {
    return new Promise((resolve) => {
      // Lines that came in with the reply before this call count too.
      const already = Math.min(count, this.received.length);
      this.received.splice(0, already);
      if (already === count) {
        resolve();
        return;
      }
      this.counter = { remaining: count - already, parse, resolve };
      const partial = this.buffered;
      this.buffered = '';
      this.onData(partial);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    if (this.counter?.parse) {
      this.buffered += chunk;
      let start = 0;
      let newline: number;
      while ((newline = this.buffered.indexOf('\n', start)) !== -1) {
        JSON.parse(this.buffered.slice(start, newline));
        start = newline + 1;
        if (--this.counter.remaining === 0) {
          this.buffered = '';
          this.finishCounting();
          return;
        }
      }
      this.buffered = this.buffered.slice(start);
      return;
    }
    if (this.counter) {
      let newline = -1;
      while ((newline = chunk.indexOf('\n', newline + 1)) !== -1) {
        if (--this.counter.remaining === 0) {
          this.finishCounting();
          return;
        }
      }
      return;
    }
    this.buffered += chunk;
    let newline: number;
    while ((newline = this.buffered.indexOf('\n')) !== -1) {
      this.received.push(this.buffered.slice(0, newline));
      this.buffered = this.buffered.slice(newline + 1);
    }
    this.deliver();
  }

  private finishCounting(): void {
    const { resolve } = this.counter!;
    this.counter = undefined;
    resolve();
  }

  private deliver(): void {
    while (this.waiters.length > 0 && this.received.length >= this.waiters[0]!.lines) {
      const waiter = this.waiters.shift()!;
      waiter.resolve(this.received.splice(0, waiter.lines));
    }
  }
}

/** Commands per second: `count` query-status written at once by a raw client on `path`, until every reply is read. */
export async function rawPipelinedRate(path: string, count: number): Promise<number> {
  const client = await RawQmpClient.open(path, true);
  const started = performance.now();
  client.write('{"execute":"query-status"}\n'.repeat(count));
  await client.countLines(count);
  const seconds = (performance.now() - started) / 1000;
  client.close();
  return count / seconds;
}

/**
 * Median query-status round trip (µs) on each path, one raw client per
 * path, `count` each, taking turns command by command in every order in
 * rotation (allOrders): sequential figures drift up to 2x between rounds on
 * a shared machine (docs/monitor-facts.md §7), and turns cancel the drift.
 */
export async function rawSequentialMicros(paths: readonly string[], count: number): Promise<number[]> {
  const clients = await Promise.all(paths.map((path) => RawQmpClient.open(path, true)));
  const samples: number[][] = paths.map(() => []);
  const orders = allOrders(clients.length);
  for (let i = 0; i < count; i++) {
    for (const which of orders[i % orders.length]!) {
      const started = performance.now();
      clients[which]!.write('{"execute":"query-status"}\n');
      await clients[which]!.next(1);
      samples[which]!.push(performance.now() - started);
    }
  }
  for (const client of clients) client.close();
  return samples.map((values) => median(values) * 1000);
}

