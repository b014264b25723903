/**
 * `npm run bench -- --against DIR` (bench/compare.ts): figures matched by
 * name, ratios compared where there is a reference, the direction of
 * "better" taken from the unit, and a change called better or worse only
 * when it is larger than either build's spread over its own runs.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compareSuite, MIN_SPREAD } from '../../bench/compare.js';
import type { BenchResult } from '../../bench/measure.js';

const rate = (ratio: number): BenchResult => ({ name: 'pipelined', qmpx: ratio * 1000, raw: 1000, unit: 'cmd/s', ratio });
const latency = (ratio: number): BenchResult => ({ name: 'sequential', qmpx: ratio * 100, raw: 100, unit: 'µs', ratio });
const unreferenced = (ms: number): BenchResult => ({ name: 'import inside', qmpx: ms, raw: 0, unit: 'ms', ratio: 0 });

test('a rate that rose beyond the spread is better; a latency that rose beyond it is worse', () => {
  const [pipelined, sequential] = compareSuite({
    suite: 's',
    ours: [[rate(1.2), latency(1.2)], [rate(1.21), latency(1.21)]],
    theirs: [[rate(1.0), latency(1.0)], [rate(1.01), latency(1.01)]],
  });
  assert.is(pipelined!.verdict, 'better');
  assert.ok(Math.abs(pipelined!.gain - (1.205 / 1.005 - 1)) < 1e-9, String(pipelined!.gain));
  assert.is(sequential!.verdict, 'worse');
  assert.ok(sequential!.gain < 0);
});

test('a change smaller than the spread of either build is within spread', () => {
  const [figure] = compareSuite({ suite: 's', ours: [[latency(1.05)], [latency(1.07)]], theirs: [[latency(1.0)], [latency(1.2)]] });
  assert.is(figure!.verdict, 'within spread');
  assert.ok(Math.abs(figure!.spread - 0.2 / 1.1) < 1e-9, String(figure!.spread));
});

test('a change within MIN_SPREAD is within spread however close the runs of each build', () => {
  const [figure] = compareSuite({ suite: 's', ours: [[latency(1.02)], [latency(1.02)]], theirs: [[latency(1.0)], [latency(1.0)]] });
  assert.is(figure!.spread, MIN_SPREAD);
  assert.is(figure!.verdict, 'within spread');
});

test('without a reference the value itself is compared; one run each gives no verdict; unmatched names are left out', () => {
  const [figure, ...rest] = compareSuite({
    suite: 's',
    ours: [[unreferenced(20), { ...rate(1), name: 'only ours' }]],
    theirs: [[unreferenced(25), { ...rate(1), name: 'only theirs' }]],
  });
  assert.equal(figure!.ours, [20]);
  assert.equal(figure!.theirs, [25]);
  assert.ok(Math.abs(figure!.gain - 0.2) < 1e-9, 'lower is better in ms');
  assert.is(figure!.verdict, 'only one run');
  assert.equal(rest, []);
});

test.run();
