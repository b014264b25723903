/**
 * What the fleet bridge's responder answers itself, before anything reaches
 * QEMU (lib/nats/command-responder.ts), on a request object in process: no
 * NATS server is needed for these, and the monitor-down answer can only be
 * reached this way (serve stops answering a VM's subjects once its link
 * closes; a request can arrive in between).
 */
import { headers as natsHeaders, type Msg, type MsgHdrs } from '@nats-io/transport-node';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AuditRecord, AuditSink } from '../../lib/audit-sink.js';
import { silentLogger } from '../../lib/log.js';
import { answerCommand, ERROR_HEADER, FORMAT_HEADER, REQUESTER_HEADER } from '../../lib/nats/command-responder.js';
import type { FleetVm } from '../../lib/nats/fleet-vm.js';
import { subjectFor } from '../../lib/nats/subjects.js';

interface Answer {
  body: string;
  error: string | undefined;
}

/** A request on `subject` with `body`; `answers` gets what the responder sends back. */
function request(subject: string, body: string, answers: Answer[], headers: Record<string, string> = {}): Msg {
  const requestHeaders = natsHeaders();
  for (const [name, value] of Object.entries(headers)) requestHeaders.set(name, value);
  const msg = {
    subject,
    reply: '_INBOX.test',
    headers: requestHeaders as MsgHdrs,
    string: () => body,
    respond: (data?: string | Uint8Array, options?: { headers?: MsgHdrs }) => {
      answers.push({ body: String(data), error: options?.headers?.get(ERROR_HEADER) || undefined });
      return true;
    },
  };
  return msg as unknown as Msg;
}

/** A VM whose monitor is not connected; `.ro.` refuses `cont` as a read-only socket does. */
const downVm: FleetVm = {
  name: 'vm1',
  upstream: { current: undefined, onLink: () => undefined },
  policies: {
    cmd: { refusal: () => undefined },
    ro: { refusal: (command) => (command === 'cont' ? `'cont' is not allowed by the read-only policy of this socket` : undefined) },
  },
};

function respond(subject: string, body: string, headers: Record<string, string> = {}): { answer: Answer; audited: AuditRecord } {
  const answers: Answer[] = [];
  const audited: AuditRecord[] = [];
  const audit: AuditSink = { recordsArguments: true, record: (entry) => audited.push(entry), close: async () => undefined };
  answerCommand(downVm, request(subject, body, answers, headers), { host: 'hv-1', audit, logger: silentLogger, signal: new AbortController().signal });
  assert.is(answers.length, 1, 'one answer per request');
  assert.is(audited.length, 1, 'one audit record per request');
  return { answer: answers[0]!, audited: audited[0]! };
}

test('a monitor that is not connected: monitor-down, with the id, audited as lost', () => {
  const { answer, audited } = respond(subjectFor('hv-1', 'vm1', 'cmd', 'query-status'), '{"execute":"query-status","id":"d1"}', { [REQUESTER_HEADER]: 'ops-7' });
  assert.is(answer.error, 'monitor-down');
  assert.is(answer.body, '{"id": "d1", "error": {"class": "GenericError", "desc": "the monitor of \\"vm1\\" is not connected; nothing was sent"}}');
  assert.equal([audited.outcome, audited.errorClass, audited.origin, audited.requester], ['lost', 'monitor-down', 'nats', 'ops-7']);
});

test('what the responder refuses is refused before the monitor is looked at', () => {
  const cases: Array<[string, string, Record<string, string>, string, RegExp]> = [
    [subjectFor('hv-1', 'vm1', 'cmd', 'query-status'), '{"execute":', {}, 'invalid', /^cannot parse JSON: /],
    [subjectFor('hv-1', 'vm1', 'cmd', 'query-status'), '{"execute":"stop"}', {}, 'mismatch', /runs 'stop' but the subject names 'query-status'/],
    [subjectFor('hv-1', 'vm1', 'ro', 'cont'), '{"execute":"cont"}', {}, 'refused', /not allowed by the read-only policy of \.ro\. subjects/],
    [subjectFor('hv-1', 'vm1', 'cmd', 'query-status'), '{"execute":"query-status"}', { [FORMAT_HEADER]: 'xml' }, 'invalid', /must be qmp or hmp/],
  ];
  for (const [subject, body, headers, code, desc] of cases) {
    const { answer } = respond(subject, body, headers);
    assert.is(answer.error, code, body);
    assert.match((JSON.parse(answer.body) as { error: { desc: string } }).error.desc, desc);
  }
});

test.run();
