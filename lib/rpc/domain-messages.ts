/**
 * Body layouts (XDR codecs) of the REMOTE domain procedures behind `virsh
 * list`, `dominfo`, `domstate`, `dumpxml`, the lifecycle calls and the
 * domain event callbacks, in the field order of libvirt's
 * remote_protocol.x. The replies of list, state, info and the dominfo
 * calls were checked byte for byte against libvirtd 9.0's
 * (spec/rpc/domain-messages.spec.ts).
 *
 * XDR carries `unsigned char` and `unsigned short` as 4-byte words, and
 * `char x<N>` (the security model and label fields) as one 4-byte word per
 * character, C strings with their NUL.
 */
import { nonnullDomain, nonnullString, optionalDomain, type Domain } from './messages.js';
import type { XdrCodec, XdrReader, XdrWriter } from './xdr.js';

/** REMOTE_DOMAIN_LIST_MAX: domains in one CONNECT_LIST_ALL_DOMAINS reply. */
export const DOMAIN_LIST_MAX = 16384;
/** REMOTE_DOMAIN_MESSAGES_MAX. */
const DOMAIN_MESSAGES_MAX = 2048;
/** VIR_SECURITY_MODEL_BUFLEN, VIR_SECURITY_DOI_BUFLEN, VIR_SECURITY_LABEL_BUFLEN. */
const SECURITY_MODEL_MAX = 257;
const SECURITY_DOI_MAX = 257;
const SECURITY_LABEL_MAX = 4097;

function struct<T>(encode: (writer: XdrWriter, value: T) => void, decode: (reader: XdrReader) => T): XdrCodec<T> {
  return { encode, decode };
}

/** `{remote_nonnull_domain dom; unsigned flags}`: GET_STATE, HAS_MANAGED_SAVE_IMAGE, GET_MESSAGES, GET_XML_DESC, RESET, REBOOT, DESTROY_FLAGS, SHUTDOWN_FLAGS. */
export interface DomainFlagsArgs {
  dom: Domain;
  flags: number;
}
export const domainFlagsArgs: XdrCodec<DomainFlagsArgs> = struct(
  (writer, value) => {
    nonnullDomain.encode(writer, value.dom);
    writer.writeUint(value.flags);
  },
  (reader) => ({ dom: nonnullDomain.decode(reader), flags: reader.readUint() }),
);

/** A reply of one int (`{int persistent}`, `{int autostart}`, `{int result}`, ...). */
export type IntReply = { value: number };
export const intReply: XdrCodec<IntReply> = struct(
  (writer, value) => writer.writeInt(value.value),
  (reader) => ({ value: reader.readInt() }),
);

/** A reply of one string (`{string type}` of GET_OS_TYPE, `{string xml}` of GET_XML_DESC). */
export type StringReply = { text: string };
export const stringReply: XdrCodec<StringReply> = struct(
  (writer, value) => nonnullString.encode(writer, value.text),
  (reader) => ({ text: nonnullString.decode(reader) }),
);

/** CONNECT_LIST_ALL_DOMAINS (273) args `{int need_results; unsigned flags}`. */
export interface ListAllDomainsArgs {
  needResults: number;
  flags: number;
}
export const listAllDomainsArgs: XdrCodec<ListAllDomainsArgs> = struct(
  (writer, value) => {
    writer.writeInt(value.needResults);
    writer.writeUint(value.flags);
  },
  (reader) => ({ needResults: reader.readInt(), flags: reader.readUint() }),
);

/** CONNECT_LIST_ALL_DOMAINS reply `{remote_nonnull_domain domains<>; unsigned ret}`. */
export interface ListAllDomainsReply {
  domains: Domain[];
  count: number;
}
export const listAllDomainsReply: XdrCodec<ListAllDomainsReply> = struct(
  (writer, value) => {
    writer.writeArray(value.domains, DOMAIN_LIST_MAX, (w, dom) => nonnullDomain.encode(w, dom));
    writer.writeUint(value.count);
  },
  (reader) => ({ domains: reader.readArray(DOMAIN_LIST_MAX, (r) => nonnullDomain.decode(r)), count: reader.readUint() }),
);

/** DOMAIN_GET_STATE (212) reply `{int state; int reason}`. */
export interface GetStateReply {
  state: number;
  reason: number;
}
export const getStateReply: XdrCodec<GetStateReply> = struct(
  (writer, value) => {
    writer.writeInt(value.state);
    writer.writeInt(value.reason);
  },
  (reader) => ({ state: reader.readInt(), reason: reader.readInt() }),
);

/** DOMAIN_GET_INFO (16) reply `{unsigned char state; unsigned hyper maxMem, memory; unsigned short nrVirtCpu; unsigned hyper cpuTime}`; memory in KiB, cpuTime in ns. */
export interface GetInfoReply {
  state: number;
  maxMemKiB: bigint;
  memoryKiB: bigint;
  vcpus: number;
  cpuTimeNs: bigint;
}
export const getInfoReply: XdrCodec<GetInfoReply> = struct(
  (writer, value) => {
    writer.writeUint(value.state);
    writer.writeUhyper(value.maxMemKiB);
    writer.writeUhyper(value.memoryKiB);
    writer.writeUint(value.vcpus);
    writer.writeUhyper(value.cpuTimeNs);
  },
  (reader) => ({
    state: reader.readUint(),
    maxMemKiB: reader.readUhyper(),
    memoryKiB: reader.readUhyper(),
    vcpus: reader.readUint(),
    cpuTimeNs: reader.readUhyper(),
  }),
);

/** `char x<max>` holding a C string: one word per byte, then the NUL. */
function writeCharArray(writer: XdrWriter, text: string, max: number): void {
  const bytes = [...Buffer.from(text, 'utf8'), 0];
  writer.writeArray(bytes, max, (w, byte) => w.writeInt(byte));
}
function readCharArray(reader: XdrReader, max: number): string {
  const bytes = reader.readArray(max, (r) => r.readInt() & 0xff);
  const end = bytes.indexOf(0);
  return Buffer.from(end === -1 ? bytes : bytes.slice(0, end)).toString('utf8');
}

/** NODE_GET_SECURITY_MODEL (122) reply `{char model<>; char doi<>}`. */
export interface SecurityModelReply {
  model: string;
  doi: string;
}
export const securityModelReply: XdrCodec<SecurityModelReply> = struct(
  (writer, value) => {
    writeCharArray(writer, value.model, SECURITY_MODEL_MAX);
    writeCharArray(writer, value.doi, SECURITY_DOI_MAX);
  },
  (reader) => ({ model: readCharArray(reader, SECURITY_MODEL_MAX), doi: readCharArray(reader, SECURITY_DOI_MAX) }),
);

/** DOMAIN_GET_SECURITY_LABEL (121) reply `{char label<>; int enforcing}`. */
export interface SecurityLabelReply {
  label: string;
  enforcing: number;
}
export const securityLabelReply: XdrCodec<SecurityLabelReply> = struct(
  (writer, value) => {
    writeCharArray(writer, value.label, SECURITY_LABEL_MAX);
    writer.writeInt(value.enforcing);
  },
  (reader) => ({ label: readCharArray(reader, SECURITY_LABEL_MAX), enforcing: reader.readInt() }),
);

/** DOMAIN_GET_MESSAGES (426) reply `{remote_nonnull_string msgs<>}`. */
export type MessagesReply = { msgs: string[] };
export const messagesReply: XdrCodec<MessagesReply> = struct(
  (writer, value) => writer.writeArray(value.msgs, DOMAIN_MESSAGES_MAX, (w, text) => nonnullString.encode(w, text)),
  (reader) => ({ msgs: reader.readArray(DOMAIN_MESSAGES_MAX, (r) => nonnullString.decode(r)) }),
);

/** CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY (316) args `{int eventID; remote_domain dom}`. */
export interface EventRegisterAnyArgs {
  eventID: number;
  dom: Domain | null;
}
export const eventRegisterAnyArgs: XdrCodec<EventRegisterAnyArgs> = struct(
  (writer, value) => {
    writer.writeInt(value.eventID);
    optionalDomain.encode(writer, value.dom);
  },
  (reader) => ({ eventID: reader.readInt(), dom: optionalDomain.decode(reader) }),
);

/** DOMAIN_EVENT_CALLBACK_LIFECYCLE (318), server → client: `{int callbackID; {dom; int event; int detail}}`. */
export interface LifecycleEventMessage {
  callbackID: number;
  dom: Domain;
  event: number;
  detail: number;
}
export const lifecycleEventMessage: XdrCodec<LifecycleEventMessage> = struct(
  (writer, value) => {
    writer.writeInt(value.callbackID);
    nonnullDomain.encode(writer, value.dom);
    writer.writeInt(value.event);
    writer.writeInt(value.detail);
  },
  (reader) => ({ callbackID: reader.readInt(), dom: nonnullDomain.decode(reader), event: reader.readInt(), detail: reader.readInt() }),
);

/** DOMAIN_EVENT_CALLBACK_REBOOT (319), server → client: `{int callbackID; {dom}}`. */
export interface RebootEventMessage {
  callbackID: number;
  dom: Domain;
}
export const rebootEventMessage: XdrCodec<RebootEventMessage> = struct(
  (writer, value) => {
    writer.writeInt(value.callbackID);
    nonnullDomain.encode(writer, value.dom);
  },
  (reader) => ({ callbackID: reader.readInt(), dom: nonnullDomain.decode(reader) }),
);
