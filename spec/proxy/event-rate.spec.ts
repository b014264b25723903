/**
 * The event rate `qmpx status` and the metrics show: events over the last
 * ten seconds, from a count sampled once a second.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EVENT_RATE_WINDOW_S, EventRate } from '../../lib/proxy/snapshot.js';

test('the rate is taken over the last window of samples, the oldest dropped as new ones come', () => {
  const rate = new EventRate();
  try {
    const start = Date.now();
    // Ten events a second, sampled every second for twice the window.
    for (let second = 1; second <= 2 * EVENT_RATE_WINDOW_S; second++) {
      rate.total += 10;
      rate.sample(start + second * 1000);
      if (second > EVENT_RATE_WINDOW_S) assert.is(rate.perSecond(start + second * 1000), 10, `after ${second} s`);
    }
    // A burst of 300 in the last second, averaged over the window.
    rate.total += 300;
    rate.sample(start + (2 * EVENT_RATE_WINDOW_S + 1) * 1000);
    assert.is(rate.perSecond(start + (2 * EVENT_RATE_WINDOW_S + 1) * 1000), (9 * 10 + 300) / EVENT_RATE_WINDOW_S);
  } finally {
    rate.stop();
  }
});

test.run();
