/**
 * The serving side's settings and names, without NATS: the `nats` config
 * key and flags, run-state keys, message ids, and that only a serve with
 * NATS configured loads the NATS client.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildServeConfig } from '../../lib/cli/serve.js';
import { QmpxError } from '../../lib/errors.js';
import { DEFAULT_RUN_STATE_BUCKET, eventStreamConfig, natsConfigFromServers } from '../../lib/nats/config.js';
import { SameTimestampCounter, eventMessage } from '../../lib/nats/event-message.js';
import { parseRunStateKey, runStateKey } from '../../lib/nats/subjects.js';
import { configFromJson } from '../../lib/proxy/config.js';

const MONITOR = { name: 'vm1', upstream: '/run/vm1/qmp.sock', qmp: '/run/qmpx/vm1.qmp' };

function thrown(body: () => unknown): Error {
  try {
    body();
  } catch (error) {
    assert.instance(error, QmpxError);
    return error as Error;
  }
  assert.unreachable('expected a QmpxError');
  throw new Error('unreachable');
}

test('the nats key of a config file: defaults, JetStream turning on the run-state bucket, one way of authenticating', () => {
  const plain = configFromJson({ nats: { servers: 'nats://n1:4222' }, monitors: [MONITOR] }, 'test.json').nats!;
  assert.equal(plain, { servers: ['nats://n1:4222'], host: hostname(), maxBufferedEvents: 10_000 });
  const full = configFromJson(
    {
      nats: { servers: ['nats://n1:4222', 'tls://n2:4443'], host: 'hv-1', user: 'agent', password: 'pw', jetStream: { maxAgeSeconds: 60 }, maxBufferedEvents: 5 },
      monitors: [MONITOR],
    },
    'test.json',
  ).nats!;
  assert.equal(full, {
    servers: ['nats://n1:4222', 'tls://n2:4443'],
    host: 'hv-1',
    user: 'agent',
    password: 'pw',
    tls: {},
    jetStream: { ...eventStreamConfig(), maxAgeSeconds: 60 },
    runStateBucket: DEFAULT_RUN_STATE_BUCKET,
    maxBufferedEvents: 5,
  });
  assert.is(configFromJson({ nats: { servers: 'n1', jetStream: true, runState: false }, monitors: [MONITOR] }, 't').nats!.runStateBucket, undefined);
  assert.match(thrown(() => configFromJson({ nats: { servers: 'n1', token: 't', user: 'u', password: 'p' }, monitors: [MONITOR] }, 't')).message, /give one of credentials, user\/password and token/);
  assert.match(thrown(() => configFromJson({ nats: { servers: 'n1', jetstream: true }, monitors: [MONITOR] }, 't')).message, /unknown key "jetstream" \(did you mean "jetStream"\?\)/);
  assert.match(thrown(() => configFromJson({ nats: { servers: 'n1', runState: 'a.b' }, monitors: [MONITOR] }, 't')).message, /runState/);
});

test('--nats takes credentials out of the URL, percent-decoded; --nats-host and --nats-jetstream refine it', async () => {
  assert.equal(natsConfigFromServers('nats://agent:p%40ss@n1:4222,n2', '--nats'), {
    servers: ['nats://n1:4222', 'nats://n2'],
    host: hostname(),
    maxBufferedEvents: 10_000,
    user: 'agent',
    password: 'p@ss',
  });
  assert.is(natsConfigFromServers('nats://s3cret@n1', '--nats').token, 's3cret');
  assert.match(thrown(() => natsConfigFromServers('http://n1', '--nats')).message, /expected nats:\/\/ or tls:\/\//);
  const config = await buildServeConfig({ upstream: MONITOR.upstream, qmp: MONITOR.qmp, nats: 'nats://n1:4222', natsHost: 'hv-9', natsJetstream: true }, []);
  assert.is(config.nats?.host, 'hv-9');
  assert.equal(config.nats?.jetStream, eventStreamConfig());
  assert.is(config.nats?.runStateBucket, DEFAULT_RUN_STATE_BUCKET);
  try {
    await buildServeConfig({ upstream: MONITOR.upstream, qmp: MONITOR.qmp, natsHost: 'hv-9' }, []);
    assert.unreachable('--nats-host without --nats');
  } catch (error) {
    assert.instance(error, QmpxError);
    assert.match((error as Error).message, /go with --nats/);
  }
});

test('run-state keys hold only key characters and read back to the names', () => {
  for (const [host, vm] of [['hv-1', 'web.1'], ['h', 'a=b%c'], ['rack 7', 'vm/ü*>']] as const) {
    const key = runStateKey(host, vm);
    assert.match(key, /^[-/_=A-Za-z0-9]+\.[-/_=A-Za-z0-9]+$/);
    assert.equal(parseRunStateKey(key), { host, vm });
  }
  assert.is(runStateKey('hv-1', 'web.1'), 'hv-1.web=2E1');
  assert.is(parseRunStateKey('a.b.c'), null);
});

test('message ids come from names and QEMU\'s timestamp only, and keep apart events QEMU stamped alike', () => {
  const timestamp = { seconds: 1796310217, microseconds: 860 };
  const counter = new SameTimestampCounter();
  const first = eventMessage('hv-1', 'web.1', 'STOP', timestamp, '{}', counter.next('1796310217.000860'));
  const second = eventMessage('hv-1', 'web.1', 'STOP', timestamp, '{}', counter.next('1796310217.000860'));
  const later = eventMessage('hv-1', 'web.1', 'RESUME', { seconds: 1796310218, microseconds: 0 }, '{}', counter.next('1796310218.000000'));
  assert.is(first.messageId, 'hv-1/web%2E1/1796310217.000860/STOP/0');
  assert.is(second.messageId, 'hv-1/web%2E1/1796310217.000860/STOP/1');
  assert.is(later.messageId, 'hv-1/web%2E1/1796310218.000000/RESUME/0');
  assert.is(first.subject, 'qmpx.hv-1.web%2E1.evt.STOP');
  assert.is(new Map(eventMessage('h', 'vm\nx', 'E', timestamp, '{}', 0).headers).get('Qmpx-Vm'), 'vm%0Ax');
});

test('qmpx serve reaches the NATS client only through a dynamic import, made when NATS is configured', () => {
  const libDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../../lib');
  const seen = new Set<string>();
  const offenders: string[] = [];
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    // Static value imports and re-exports; `import type` is erased and `await import()` is lazy.
    for (const match of source.matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?from\s+'([^']+)'/gms)) {
      const target = match[1]!;
      if (target.startsWith('@nats-io/')) offenders.push(`${file.slice(libDir.length + 1)} imports ${target}`);
      else if (target.startsWith('.')) visit(join(dirname(file), target.replace(/\.js$/, '.ts')));
    }
  };
  visit(join(libDir, 'cli/main.ts'));
  visit(join(libDir, 'cli/serve.ts'));
  assert.ok(seen.has(join(libDir, 'proxy/daemon.ts')), 'the walk reaches serve');
  assert.equal(offenders, []);
});

test.run();
