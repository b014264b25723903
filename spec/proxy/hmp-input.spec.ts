/**
 * What a text-monitor (HMP) client types ahead: answered in time linear in
 * its length, and held in bounded memory (its input is paused while its
 * lines wait).
 */
import { connect as connectSocket, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_MAX_PENDING_PER_CLIENT } from '../../lib/proxy/session.js';
import { serveQemu, type ServedQemu } from './harness.js';

const PROMPT = '(qemu) ';
let served: ServedQemu;

test.before(async () => {
  served = await serveQemu({ hmp: true });
});

test.after(async () => {
  await served?.stop();
});

/** A raw client that counts the prompts it reads (a prompt may be split across reads). */
class PromptCounter {
  prompts = 0;
  /** What was read, up to 1 MB. */
  received = '';
  /** The last 100 characters read. */
  last = '';
  private tail = '';
  private readonly listeners = new Set<() => void>();

  constructor(readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (text: string) => {
      const searched = this.tail + text;
      for (let at = searched.indexOf(PROMPT); at !== -1; at = searched.indexOf(PROMPT, at + PROMPT.length)) this.prompts++;
      this.tail = searched.endsWith(PROMPT) ? '' : searched.slice(-(PROMPT.length - 1));
      if (this.received.length < 1_000_000) this.received += text;
      this.last = (this.last + text).slice(-100);
      for (const listener of this.listeners) listener();
    });
  }

  /** Resolves once `count` prompts have been read; rejects after `timeoutMs`, saying how many came. */
  until(count: number, timeoutMs: number, onData?: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(check);
        reject(new Error(`${this.prompts} of ${count} prompts within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = (): void => {
        onData?.();
        if (this.prompts < count) return;
        clearTimeout(timer);
        this.listeners.delete(check);
        resolve();
      };
      this.listeners.add(check);
      check();
    });
  }
}

async function open(path: string): Promise<PromptCounter> {
  const socket = connectSocket(path);
  socket.on('error', () => undefined);
  const counter = new PromptCounter(socket);
  await counter.until(1, 10_000);
  return counter;
}

test('200,000 blank lines sent at once are all answered, each with a prompt, in time linear in their number', async () => {
  const client = await open(served.hmpPath);
  const count = 200_000;
  client.socket.write('\n'.repeat(count));
  // The linear code answers them in 0.1 to 0.2 s here, a queue that shifts its head in several seconds;
  // this deadline is there to catch the latter.
  await client.until(1 + count, 2_000);
  assert.is(client.prompts, 1 + count);
  // And the session is still usable.
  client.socket.write('info status\n');
  await client.until(2 + count, 10_000);
  assert.ok(client.last.endsWith('(qemu) VM status: paused (prelaunch)\r\n(qemu) '), client.last);
  client.socket.destroy();
});

test('lines typed ahead wait in bounded numbers: at most maxPendingCommands per client, its input paused meanwhile', async () => {
  const client = await open(served.hmpPath);
  const count = 5000;
  let mostPending = 0;
  client.socket.write('info status\n'.repeat(count));
  await client.until(1 + count, 60_000, () => (mostPending = Math.max(mostPending, served.proxy.pendingCount)));
  assert.ok(mostPending > 1, `some lines waited (${mostPending})`);
  assert.ok(mostPending <= DEFAULT_MAX_PENDING_PER_CLIENT + 1, `at most ${DEFAULT_MAX_PENDING_PER_CLIENT} lines and the unread input: ${mostPending}`);
  assert.is(client.received.split('VM status: paused (prelaunch)\r\n(qemu) ').length - 1, count);
  client.socket.destroy();
});

test.run();
