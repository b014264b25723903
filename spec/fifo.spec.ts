/**
 * The queue every input path shares: first in, first out, whatever the mix
 * of pushes and shifts, and compacted so memory follows what is queued.
 */
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Fifo } from '../lib/fifo.js';

test('items leave in the order they came; an empty queue gives undefined', () => {
  const queue = new Fifo<number>();
  assert.is(queue.shift(), undefined);
  assert.is(queue.peek(), undefined);
  for (let i = 0; i < 5; i++) queue.push(i);
  assert.is(queue.length, 5);
  assert.is(queue.peek(), 0);
  assert.equal([...queue], [0, 1, 2, 3, 4]);
  assert.equal([queue.shift(), queue.shift()], [0, 1]);
  assert.is(queue.length, 3);
  queue.clear();
  assert.is(queue.length, 0);
  assert.is(queue.shift(), undefined);
});

test('any mix of pushes and shifts behaves as an array queue (fast-check, seeded)', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.constant<'shift'>('shift'), fc.integer({ min: 1, max: 3000 })), { maxLength: 60 }), (operations) => {
      const queue = new Fifo<number>();
      const model: number[] = [];
      let next = 0;
      for (const operation of operations) {
        if (operation === 'shift') {
          assert.is(queue.shift(), model.shift());
        } else {
          for (let i = 0; i < operation; i++) {
            queue.push(next);
            model.push(next++);
          }
          // Shift most of what was pushed, so the front index passes the compaction point.
          for (let i = 0; i < operation - 1; i++) assert.is(queue.shift(), model.shift());
        }
        assert.is(queue.length, model.length);
        assert.is(queue.peek(), model[0]);
      }
      assert.equal([...queue], model);
    }),
    { seed: 13, numRuns: 200 },
  );
});

test('a queue that never empties keeps only about what it holds', () => {
  const queue = new Fifo<{ index: number }>();
  queue.push({ index: 0 });
  for (let i = 1; i <= 1_000_000; i++) {
    queue.push({ index: i });
    assert.is(queue.shift()!.index, i - 1);
  }
  assert.is(queue.length, 1);
  // The array behind it: compacted, so not a million slots long.
  const items = (queue as unknown as { items: unknown[] }).items;
  assert.ok(items.length <= 2 * 1024 + 2, `backing array of ${items.length}`);
});

test.run();
