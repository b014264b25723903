/**
 * The fleet client's pure pieces: URLs, globs and the subjects they narrow
 * to, and the serve's header names it repeats (it cannot import them
 * without loading the NATS client).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError } from '../../lib/errors.js';
import { ERROR_HEADER as SERVE_ERROR_HEADER, FORMAT_HEADER as SERVE_FORMAT_HEADER, HMP_COMMAND as SERVE_HMP_COMMAND } from '../../lib/nats/command-responder.js';
import { ERROR_HEADER, FORMAT_HEADER, HMP_COMMAND } from '../../lib/nats/client-request.js';
import { describeTarget, parseNatsTarget } from '../../lib/nats/client-connection.js';
import { eventFilter, eventSubject, globMatcher } from '../../lib/nats/client-events.js';

test('the client sends the header names and HMP subject the serve reads', () => {
  assert.equal([ERROR_HEADER, FORMAT_HEADER, HMP_COMMAND], [SERVE_ERROR_HEADER, SERVE_FORMAT_HEADER, SERVE_HMP_COMMAND]);
});

test('a NATS URL: server, credentials, and an optional HOST/VM path, percent-decoded', () => {
  assert.equal(parseNatsTarget('nats://nats.example'), { server: 'nats://nats.example:4222' });
  assert.equal(parseNatsTarget('nats://alice:s%40cret@nats.example:4333/web-1'), { server: 'nats://nats.example:4333', user: 'alice', pass: 's@cret', vm: 'web-1' });
  assert.equal(parseNatsTarget('tls://nats.example/hv%2E1/a%2Fb'), { server: 'tls://nats.example:4222', host: 'hv.1', vm: 'a/b' });
  assert.is(describeTarget(parseNatsTarget('nats://alice:secret@n:1/h/v')), 'nats://alice@n:1/h/v', 'no password in messages');
  for (const bad of ['unix:/tmp/x', 'nats://', 'nats://n/a/b/c', 'nats://n/vm?x=1']) {
    assert.throws(() => parseNatsTarget(bad), (error: unknown) => error instanceof InvalidArgumentError, bad);
  }
});

test('globs match whole names: *, ?, [set], [!set], \\ escapes', () => {
  const web = globMatcher('web-*');
  assert.ok(web('web-1') && web('web-') && !web('xweb-1') && !web('Web-1'));
  assert.ok(globMatcher('web-*', true)('WEB-1'));
  assert.ok(globMatcher('vm-?')('vm-a') && !globMatcher('vm-?')('vm-ab'));
  assert.ok(globMatcher('vm-[ab]')('vm-b') && !globMatcher('vm-[ab]')('vm-c'));
  assert.ok(globMatcher('vm-[!ab]')('vm-c') && !globMatcher('vm-[!ab]')('vm-a'));
  assert.ok(globMatcher('a\\*')('a*') && !globMatcher('a\\*')('ab'));
  assert.ok(globMatcher('a.b')('a.b') && !globMatcher('a.b')('axb'), 'regex characters are literal');
  assert.throws(() => globMatcher('vm-[ab'), (error: unknown) => error instanceof InvalidArgumentError);
});

test('exact names narrow the subscription to their encoded token; globs become * and are filtered locally', () => {
  assert.is(eventSubject({}), 'qmpx.*.*.evt.*');
  assert.is(eventSubject({ host: 'hv.1', vm: 'web-1', event: 'STOP' }), 'qmpx.hv%2E1.web-1.evt.STOP');
  assert.is(eventSubject({ vm: 'web-*', event: 'BLOCK_*' }), 'qmpx.*.*.evt.*');
  assert.is(eventSubject({ vm: 'web-1', ignoreCase: true }), 'qmpx.*.*.evt.*', 'a token matches case-sensitively');
  const filter = eventFilter({ vm: 'web-*', event: 'BLOCK_*' });
  assert.ok(filter('any', 'web-1', 'BLOCK_JOB_COMPLETED'));
  assert.not.ok(filter('any', 'db-1', 'BLOCK_JOB_COMPLETED'));
  assert.not.ok(filter('any', 'web-1', 'STOP'));
});

test.run();
