/**
 * PendingRequest: settles once, by reply, timeout or abort; requests sharing
 * one signal (a proxy session's) put one listener on it, not one each.
 */
import { getEventListeners } from 'node:events';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AbortError } from '../../lib/errors.js';
import { DRIVER_ORIGIN, PendingRequest } from '../../lib/request.js';

async function outcome(request: PendingRequest<string>): Promise<string> {
  return request.promise.then(
    (reply) => `reply ${reply}`,
    (error: Error) => `${error.name} ${error.message}`,
  );
}

test('requests sharing a signal: one listener on it; abort settles those still pending, in order', async () => {
  const controller = new AbortController();
  const requests = Array.from({ length: 100 }, (_, index) => new PendingRequest<string>(`cmd${index}`, DRIVER_ORIGIN, { signal: controller.signal }));
  assert.is(getEventListeners(controller.signal, 'abort').length, 1);
  requests[0]!.resolve('early');
  requests[1]!.reject(new Error('failed'));
  const settled: string[] = [];
  for (const request of requests) void request.promise.catch((error: unknown) => settled.push((error as AbortError).command));
  controller.abort(new Error('client left'));
  const outcomes = await Promise.all(requests.map(outcome));
  assert.is(outcomes[0], 'reply early');
  assert.is(outcomes[1], 'Error failed');
  assert.ok(outcomes.slice(2).every((text, index) => text === `AbortError cmd${index + 2}: aborted`));
  assert.equal(settled.slice(1), requests.slice(2).map((request) => request.command), 'aborted in the order they were made');
  const error = await requests[2]!.promise.catch((reason: unknown) => reason);
  assert.instance(error, AbortError);
  assert.is(((error as AbortError).cause as Error).message, 'client left', 'the signal’s reason is the cause');
});

test('a request settled before the abort is not touched; one made with an aborted signal rejects', async () => {
  const controller = new AbortController();
  const done = new PendingRequest<string>('done', DRIVER_ORIGIN, { signal: controller.signal });
  done.resolve('ok');
  controller.abort();
  assert.is(await outcome(done), 'reply ok');
  const late = new PendingRequest<string>('late', DRIVER_ORIGIN, { signal: controller.signal });
  assert.is(await outcome(late), 'AbortError late: aborted');
  assert.not.ok(late.resolve('too late'), 'a settled request ignores later outcomes');
});

test('separate signals abort only their own requests', async () => {
  const first = new AbortController();
  const second = new AbortController();
  const a = new PendingRequest<string>('a', DRIVER_ORIGIN, { signal: first.signal });
  const b = new PendingRequest<string>('b', DRIVER_ORIGIN, { signal: second.signal });
  first.abort();
  b.resolve('fine');
  assert.equal(await Promise.all([outcome(a), outcome(b)]), ['AbortError a: aborted', 'reply fine']);
});

test.run();
