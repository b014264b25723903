/**
 * The domain procedures' layouts against libvirtd 9.0's own bytes: every
 * message of the RPC traffic of `virsh list --all`, `dominfo`, `domstate
 * --reason`, `resume`, `suspend`, `reset`, `domtime`
 * (vectors/socat-virsh-basics.hex.log) and of libvirt-python's
 * listAllDomains / state / info / isActive / lifecycle callbacks
 * (vectors/socat-python-lifecycle.hex.log) is described by the catalog,
 * decoded, and re-encoded byte for byte; a few replies are checked field by
 * field against what virsh printed.
 */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describeBody } from '../../lib/rpc/catalog.js';
import type { GetInfoReply, LifecycleEventMessage, ListAllDomainsReply, SecurityModelReply } from '../../lib/rpc/domain-messages.js';
import { FrameDecoder, type RpcMessage } from '../../lib/rpc/framing.js';
import { RemoteProc } from '../../lib/rpc/protocol.js';
import { decodeXdr, encodeXdr } from '../../lib/rpc/xdr.js';

/** The two directions of a `socat -x -v` log, each reassembled into messages. */
function socatMessages(file: string): { toServer: RpcMessage[]; toClient: RpcMessage[] } {
  const streams = { '>': [] as Buffer[], '<': [] as Buffer[] };
  let direction: '>' | '<' | undefined;
  for (const line of readFileSync(new URL(`../../../spec/rpc/vectors/${file}`, import.meta.url), 'utf8').split('\n')) {
    const header = /^([<>]) \S+ \S+\s+length=\d+/.exec(line);
    if (header) {
      direction = header[1] as '>' | '<';
      continue;
    }
    if (direction !== undefined && line.startsWith(' ')) streams[direction].push(Buffer.from(line.slice(1, 49).replace(/ /g, ''), 'hex'));
  }
  const frame = (chunks: Buffer[]): RpcMessage[] => {
    const decoder = new FrameDecoder({ skipFdPlaceholderBytes: false });
    const messages = decoder.decode(Buffer.concat(chunks));
    assert.is(decoder.bufferedBytes, 0);
    return messages;
  };
  return { toServer: frame(streams['>']), toClient: frame(streams['<']) };
}

/** REMOTE_PROC_DOMAIN_GET_TIME. */
const GET_TIME = 337;

const virshTraffic = socatMessages('socat-virsh-basics.hex.log');
const pythonTraffic = socatMessages('socat-python-lifecycle.hex.log');

test('every message of the virsh and python traffic is known, decodes and re-encodes to the same bytes', () => {
  const counts = [virshTraffic.toServer, virshTraffic.toClient, pythonTraffic.toServer, pythonTraffic.toClient].map((messages) => messages.length);
  assert.equal(counts, [77, 77, 20, 22]);
  const all = [...virshTraffic.toServer, ...virshTraffic.toClient, ...pythonTraffic.toServer, ...pythonTraffic.toClient];
  for (const message of all) {
    // DOMAIN_GET_TIME (`virsh domtime`) is a call qmpx does not serve: its args have no codec here (its error reply has).
    if (message.header.proc === GET_TIME && message.header.type === 0) continue;
    const description = describeBody(message.header);
    assert.ok(description, `proc ${message.header.proc} type ${message.header.type} is not in the catalog`);
    const value = decodeXdr(description.codec, message.body);
    assert.equal(encodeXdr(description.codec, value).toString('hex'), message.body.toString('hex'), `${description.name} ${description.role}`);
  }
});

function reply<T>(messages: RpcMessage[], proc: number): T {
  const message = messages.find((candidate) => candidate.header.proc === proc);
  assert.ok(message, `no reply to ${proc}`);
  return decodeXdr(describeBody(message.header)!.codec, message.body) as T;
}

test('the replies say what virsh printed: one domain lab1 id 1, paused (user), 64 MiB, 1 vCPU, model none / DOI 0', () => {
  const list = reply<ListAllDomainsReply>(virshTraffic.toClient, RemoteProc.CONNECT_LIST_ALL_DOMAINS);
  assert.equal(list.domains.map((dom) => [dom.name, dom.id]), [['lab1', 1]]);
  assert.is(list.count, 1);
  assert.equal(reply(virshTraffic.toClient, RemoteProc.DOMAIN_GET_STATE), { state: 3, reason: 1 });
  const info = reply<GetInfoReply>(virshTraffic.toClient, RemoteProc.DOMAIN_GET_INFO);
  assert.equal(info, { state: 3, maxMemKiB: 65536n, memoryKiB: 65536n, vcpus: 1, cpuTimeNs: 280_000_000n });
  assert.equal(reply<SecurityModelReply>(virshTraffic.toClient, RemoteProc.NODE_GET_SECURITY_MODEL), { model: 'none', doi: '0' });
  assert.equal(reply(virshTraffic.toClient, RemoteProc.DOMAIN_GET_SECURITY_LABEL), { label: '', enforcing: 0 });
  assert.equal(reply(virshTraffic.toServer, RemoteProc.CONNECT_LIST_ALL_DOMAINS), { needResults: 1, flags: 3 });
});

test('the python lifecycle callback: register any LIFECYCLE for every domain, then RESUMED 0 and SUSPENDED 0 as MESSAGEs with serial 1', () => {
  assert.equal(reply(pythonTraffic.toServer, RemoteProc.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY), { eventID: 0, dom: null });
  const events = pythonTraffic.toClient.filter((message) => message.header.proc === RemoteProc.DOMAIN_EVENT_CALLBACK_LIFECYCLE);
  assert.equal(
    events.map((message) => [message.header.type, message.header.serial]),
    [
      [2, 1],
      [2, 1],
    ],
  );
  const bodies = events.map((message) => decodeXdr(describeBody(message.header)!.codec, message.body) as LifecycleEventMessage);
  assert.equal(
    bodies.map((body) => [body.callbackID, body.dom.name, body.event, body.detail]),
    [
      [2, 'lab1', 4, 0],
      [2, 'lab1', 3, 0],
    ],
  );
});

test.run();
