/**
 * Replay of the captures against the endpoint: every message a client sent
 * libvirtd in spec/rpc/vectors/mitm-*.log is sent, byte for byte and
 * connection by connection, to startLibvirtEndpoint in front of a real QEMU
 * 7.2 named and uuid'd like the captured domain (`lab1`) and running, as it
 * was. Every reply must decode to the structure libvirtd sent, after the
 * normalisations that no endpoint can reproduce:
 *
 * - `libvirt-N` ids: counters of another process (the shape is kept);
 * - callback ids: libvirtd's daemon-wide counter (mapped per connection);
 * - CONNECT_GET_VERSION: the test QEMU's micro version may differ (7002022);
 * - JSON parse and regex errors: libvirt's reason text is yajl's and GLib's,
 *   qmpx's its own and JavaScript's (code, domain, and the text up to the
 *   reason are compared);
 * - DEREGISTER calls name libvirtd's callback id: the id this endpoint
 *   returned for the same registration is put in its place, as the client
 *   would have done (the only client bytes changed).
 *
 * Excluded, each with its reason (EXCLUDED below): fd passing (Node cannot
 * receive SCM_RIGHTS fds, so FD_PASSING is 0 and calls carrying fds are
 * refused), and replies that depend on the captured guest's hardware.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describeBody } from '../../lib/rpc/catalog.js';
import { FrameDecoder, encodeMessage, type RpcMessage } from '../../lib/rpc/framing.js';
import { callbackIdBody } from '../../lib/rpc/messages.js';
import { Feature, MessageStatus, MessageType, QemuProc, RemoteProc, RpcProgram } from '../../lib/rpc/protocol.js';
import { decodeXdr, encodeXdr } from '../../lib/rpc/xdr.js';
import { CAPTURE_LOGS, readCaptureLog, type CapturedMessage } from './capture-log.js';
import { DOMAIN_NAME, DOMAIN_UUID, startEndpoint, type Endpoint } from './endpoint-harness.js';
import { RpcTestClient } from './rpc-client.js';

let endpoint: Endpoint;

/** Replies compared and client messages excluded (all for fd passing) per capture: a change means a message was skipped. */
const EXPECTED: Record<(typeof CAPTURE_LOGS)[number], { compared: number; skipped: number }> = {
  'mitm-ev.log': { compared: 32, skipped: 0 },
  'mitm-fds.log': { compared: 43, skipped: 13 },
  'mitm-py.log': { compared: 15, skipped: 0 },
  'mitm-py2.log': { compared: 10, skipped: 0 },
  'mitm-py3.log': { compared: 8, skipped: 0 },
  'mitm-qmpproxy.log': { compared: 15, skipped: 5 },
  'mitm-raw.log': { compared: 105, skipped: 2 },
  'mitm-uuid.log': { compared: 10, skipped: 0 },
};

test.before(async () => {
  endpoint = await startEndpoint({ qemuArgs: ['-name', DOMAIN_NAME, '-uuid', DOMAIN_UUID] });
  await endpoint.other.execute('cont');
});
test.after(async () => {
  await endpoint.close();
});

function frame(raw: Buffer): RpcMessage {
  return new FrameDecoder({ skipFdPlaceholderBytes: false }).decode(raw)[0]!;
}

/** Why a captured call's reply is not compared. */
function excluded(call: RpcMessage): string | undefined {
  if (call.header.type === MessageType.CALL_WITH_FDS && call.fdCount > 0) return 'carries fds: refused, Node cannot receive SCM_RIGHTS';
  if (call.header.proc === QemuProc.DOMAIN_MONITOR_COMMAND_WITH_FILES && call.header.prog === RpcProgram.QEMU) {
    const cmd = decodeXdr(describeBody(call.header)!.codec, call.body) as { cmd: string };
    // closefd / getfd name an fd a previous call passed: meaningful only with fd passing.
    if (/"(getfd|closefd)"/.test(cmd.cmd)) return 'names a passed fd';
  }
  if (call.header.prog === RpcProgram.REMOTE && call.header.proc === RemoteProc.CONNECT_SUPPORTS_FEATURE) {
    const { feature } = decodeXdr(describeBody(call.header)!.codec, call.body) as { feature: number };
    if (feature === Feature.FD_PASSING) return 'FD_PASSING: libvirtd says 1, qmpx 0 (no SCM_RIGHTS in Node)';
  }
  return undefined;
}

/** The call's bytes, with a DEREGISTER's libvirtd callback id replaced by this endpoint's. */
function withOurCallbackId(call: RpcMessage, raw: Buffer, callbackIdMap: ReadonlyMap<number, number>): Buffer {
  if (call.header.prog !== RpcProgram.QEMU || call.header.proc !== QemuProc.CONNECT_DOMAIN_MONITOR_EVENT_DEREGISTER) return raw;
  const { callbackID } = decodeXdr(callbackIdBody, call.body);
  return encodeMessage(call.header, encodeXdr(callbackIdBody, { callbackID: callbackIdMap.get(callbackID) ?? callbackID }));
}

/** A decoded body with what no endpoint can reproduce replaced by placeholders. */
function normalise(value: unknown, callbackIds: Map<number, number>, key = ''): unknown {
  if (typeof value === 'string') {
    return value
      .replace(/"id":"libvirt-\d+"/g, '"id":"libvirt-N"')
      .replace(/^((?:internal error: )?cannot parse json [^:]*): [\s\S]*$/, '$1: <parser detail>')
      .replace(/^((?:invalid argument: )?failed to compile regex '[^']*'): [\s\S]*$/, '$1: <regex engine detail>');
  }
  if (typeof value === 'bigint') return key === 'hvVer' ? 'version' : value;
  if (typeof value === 'number' && key === 'callbackID') {
    if (!callbackIds.has(value)) callbackIds.set(value, callbackIds.size);
    return `callback-${callbackIds.get(value)}`;
  }
  if (Buffer.isBuffer(value)) return value.toString('hex');
  if (Array.isArray(value)) return value.map((item) => normalise(item, callbackIds));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([field, item]) => [field, normalise(item, callbackIds, field)]));
  }
  return value;
}

function decodeNormalised(message: RpcMessage, callbackIds: Map<number, number>): unknown {
  const description = describeBody(message.header);
  assert.ok(description, `no layout for ${JSON.stringify(message.header)}`);
  return { status: message.header.status, body: normalise(decodeXdr(description.codec, message.body), callbackIds) };
}

interface Outcome {
  compared: number;
  excluded: string[];
}

/** Replays one captured connection; asserts each reply equals libvirtd's. */
async function replayConnection(file: string, messages: CapturedMessage[]): Promise<Outcome> {
  const client = await RpcTestClient.connect(endpoint.socketPath);
  const ours = new Map<number, number>();
  const theirs = new Map<number, number>();
  const outcome: Outcome = { compared: 0, excluded: [] };
  const callbackIdMap = new Map<number, number>();
  try {
    for (const captured of messages.filter((m) => m.direction === 'C->S')) {
      const call = frame(captured.raw);
      const where = `${file}:${captured.line} ${captured.name} serial ${call.header.serial}`;
      const reason = excluded(call);
      if (reason) {
        outcome.excluded.push(`${where}: ${reason}`);
        continue;
      }
      client.writeRaw(Buffer.concat([withOurCallbackId(call, captured.raw, callbackIdMap), Buffer.alloc(call.fdCount)]));
      if (call.header.type !== MessageType.CALL && call.header.type !== MessageType.CALL_WITH_FDS) continue;
      const expected = messages.find(
        (m) => m.direction === 'S->C' && m.type === MessageType.REPLY && m.serial === call.header.serial && m.proc === call.header.proc && m.prog === call.header.prog,
      );
      assert.ok(expected, `${where}: no captured reply`);
      const reply = await client.waitFor(
        (m) => m.header.type === MessageType.REPLY && m.header.serial === call.header.serial && m.header.proc === call.header.proc,
        where,
      );
      client.received.splice(client.received.indexOf(reply), 1);
      if (call.header.prog === RpcProgram.QEMU && call.header.proc === QemuProc.CONNECT_DOMAIN_MONITOR_EVENT_REGISTER && reply.header.status === MessageStatus.OK) {
        callbackIdMap.set(decodeXdr(callbackIdBody, frame(expected.raw).body).callbackID, decodeXdr(callbackIdBody, reply.body).callbackID);
      }
      assert.equal(decodeNormalised(reply, ours), decodeNormalised(frame(expected.raw), theirs), where);
      outcome.compared++;
    }
  } finally {
    client.close();
  }
  return outcome;
}

for (const file of CAPTURE_LOGS) {
  test(`${file}: every client message replayed, every reply as libvirtd's`, async () => {
    const messages = readCaptureLog(file, () => true);
    const connections = [...new Set(messages.map((m) => m.connection))];
    let compared = 0;
    let skipped = 0;
    for (const connection of connections) {
      const outcome = await replayConnection(file, messages.filter((m) => m.connection === connection));
      compared += outcome.compared;
      skipped += outcome.excluded.length;
    }
    assert.equal({ compared, skipped }, EXPECTED[file], file);
  });
}

test.run();
