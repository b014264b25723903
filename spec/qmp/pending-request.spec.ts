/**
 * PendingRequest: settles once, by reply, timeout or abort; requests sharing
 * one signal (a proxy session's) put one listener on it, not one each; a
 * request made with a callback reports its outcome synchronously.
 */
import { getEventListeners } from 'node:events';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AbortError } from '../../lib/errors.js';
import { DRIVER_ORIGIN, PendingRequest, type RequestOutcome } from '../../lib/request.js';

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

test('with a callback: the outcome is given synchronously, once; the promise is made only when asked for', async () => {
  const seen: Array<RequestOutcome<string>> = [];
  const resolved = new PendingRequest<string>('a', DRIVER_ORIGIN, {}, undefined, (result) => seen.push(result));
  assert.ok(resolved.resolve('first'));
  assert.equal(seen, [{ ok: true, reply: 'first' }], 'called inside resolve()');
  assert.not.ok(resolved.resolve('second'));
  assert.not.ok(resolved.reject(new Error('late')));
  assert.is(seen.length, 1);
  assert.is(await outcome(resolved), 'reply first', 'a promise asked for after settling carries the outcome');

  const rejections: unknown[] = [];
  const onRejection = (reason: unknown): number => rejections.push(reason);
  process.on('unhandledRejection', onRejection);
  try {
    const controller = new AbortController();
    const aborted = new PendingRequest<string>('b', DRIVER_ORIGIN, { signal: controller.signal }, undefined, (result) => seen.push(result));
    controller.abort();
    assert.is(seen.length, 2, 'the abort is reported as it happens');
    assert.instance((seen[1] as { ok: false; error: Error }).error, AbortError);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(rejections, [], 'nobody asked for the promise: no unhandled rejection');
    assert.is(await outcome(aborted), 'AbortError b: aborted');
  } finally {
    process.off('unhandledRejection', onRejection);
  }
});

test.run();
