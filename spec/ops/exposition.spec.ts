/**
 * The strict exposition reader the metrics specs rely on refuses what
 * Prometheus would refuse, and serve's own registry passes it with no
 * monitor at all; --metrics addresses are read or refused with a reason.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { QmpxError } from '../../lib/errors.js';
import { ServeMetrics, parseListenAddress } from '../../lib/proxy/metrics.js';
import { checkExposition, ExpositionError } from './exposition.js';

const GOOD = '# HELP a_total A counter\n# TYPE a_total counter\na_total{x="1"} 3\n\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1.5\nh_count 2\n';

test('a well-formed text is read back sample by sample', () => {
  const samples = checkExposition(GOOD);
  assert.is(samples.get('a_total{x="1"}')?.value, 3);
  assert.is(samples.get('h_count')?.value, 2);
});

const BAD: Array<[string, string]> = [
  ['no final newline', GOOD.slice(0, -1)],
  ['a sample before its TYPE', 'b 1\n# TYPE b gauge\n'],
  ['a sample of another family', '# TYPE a gauge\nb 1\n'],
  ['an unquoted label value', '# TYPE a gauge\na{x=1} 1\n'],
  ['a bad escape', '# TYPE a gauge\na{x="\\t"} 1\n'],
  ['a bad value', '# TYPE a gauge\na 1,5\n'],
  ['a type twice', '# TYPE a gauge\n# TYPE a gauge\n'],
  ['a stray comment', '# TYPE a gauge\n# hello\n'],
  ['a sample twice', '# TYPE a gauge\na 1\na 2\n'],
  ['buckets not cumulative', '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 0\nh_count 1\n'],
  ['+Inf differs from _count', '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 0\nh_count 3\n'],
];

for (const [what, text] of BAD) {
  test(`refused: ${what}`, () => {
    assert.throws(() => checkExposition(text), (error: unknown) => error instanceof ExpositionError);
  });
}

test("serve's registry with no monitor passes, with process metrics", async () => {
  const metrics = new ServeMetrics();
  const samples = checkExposition(await metrics.text());
  assert.ok(samples.has('qmpx_process_start_time_seconds'));
});

test('--metrics addresses', () => {
  assert.equal(parseListenAddress('127.0.0.1:9464'), { host: '127.0.0.1', port: 9464 });
  assert.equal(parseListenAddress('[::1]:0'), { host: '::1', port: 0 });
  assert.equal(parseListenAddress(':9464'), { host: '127.0.0.1', port: 9464 });
  for (const bad of ['9464', 'localhost', 'host:99999', 'a:b']) {
    assert.throws(() => parseListenAddress(bad), (error: unknown) => error instanceof QmpxError && /--metrics: expected HOST:PORT/.test(error.message));
  }
});

test.run();
