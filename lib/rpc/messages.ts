/**
 * Body layouts (XDR codecs) of the RPC messages a minimal libvirt endpoint
 * exchanges (docs/monitor-facts.md §6). Each layout is written in the field order of
 * libvirt's remote_protocol.x / qemu_protocol.x and was checked byte for byte
 * against spec/rpc/vectors/mitm-*.log (spec/rpc/replay.spec.ts decodes
 * and re-encodes every captured message).
 *
 * Naming: `FooArgs` / `FooReply` / `FooMessage` is the decoded shape,
 * `fooArgs` / `fooReply` / `fooMessage` its codec. Procedures whose args or
 * reply are empty (CONNECT_CLOSE, GET_TYPE's args, 360/361, ...) use
 * `emptyBody`.
 */
import { RpcLimit } from './protocol.js';
import type { XdrCodec, XdrReader, XdrWriter } from './xdr.js';

/** Bytes of `remote_uuid` (VIR_UUID_BUFLEN). */
export const UUID_BYTES = 16;

/** A codec for a struct: `encode` writes the fields in order, `decode` reads them back. */
function struct<T>(encode: (writer: XdrWriter, value: T) => void, decode: (reader: XdrReader) => T): XdrCodec<T> {
  return { encode, decode };
}

/** A codec for `T *` (remote_domain, remote_string, ...). */
function optional<T>(codec: XdrCodec<T>): XdrCodec<T | null> {
  return struct(
    (writer, value) => writer.writeOptional(value, (w, present) => codec.encode(w, present)),
    (reader) => reader.readOptional((r) => codec.decode(r)),
  );
}

/** No bytes at all: void args and void replies. */
export const emptyBody: XdrCodec<void> = struct(
  () => undefined,
  () => undefined,
);

/** remote_nonnull_string: at most 4 MiB of UTF-8. */
export const nonnullString: XdrCodec<string> = struct(
  (writer, value) => writer.writeString(value, RpcLimit.STRING_BYTES),
  (reader) => reader.readString(RpcLimit.STRING_BYTES),
);

/** remote_string: a nullable remote_nonnull_string. */
export const optionalString: XdrCodec<string | null> = optional(nonnullString);

/** remote_uuid: `opaque[16]`, raw bytes (not the 36-character text form). */
export const uuid: XdrCodec<Buffer> = struct(
  (writer, value) => writer.writeOpaqueFixed(value, UUID_BYTES),
  (reader) => reader.readOpaqueFixed(UUID_BYTES),
);

/** remote_nonnull_domain `{string name; opaque uuid[16]; int id}`; id is -1 for an inactive domain. */
export interface Domain {
  name: string;
  uuid: Buffer;
  id: number;
}
export const nonnullDomain: XdrCodec<Domain> = struct(
  (writer, value) => {
    nonnullString.encode(writer, value.name);
    uuid.encode(writer, value.uuid);
    writer.writeInt(value.id);
  },
  (reader) => ({ name: nonnullString.decode(reader), uuid: uuid.decode(reader), id: reader.readInt() }),
);
/** remote_domain: a nullable remote_nonnull_domain. */
export const optionalDomain: XdrCodec<Domain | null> = optional(nonnullDomain);

/** remote_nonnull_network `{string name; opaque uuid[16]}` (only inside remote_error). */
export interface Network {
  name: string;
  uuid: Buffer;
}
export const nonnullNetwork: XdrCodec<Network> = struct(
  (writer, value) => {
    nonnullString.encode(writer, value.name);
    uuid.encode(writer, value.uuid);
  },
  (reader) => ({ name: nonnullString.decode(reader), uuid: uuid.decode(reader) }),
);
export const optionalNetwork: XdrCodec<Network | null> = optional(nonnullNetwork);

/** remote_error / virNetMessageError: the body of every status ERROR reply. */
export interface RemoteError {
  code: number;
  domain: number;
  message: string | null;
  level: number;
  dom: Domain | null;
  str1: string | null;
  str2: string | null;
  str3: string | null;
  int1: number;
  int2: number;
  net: Network | null;
}
export const remoteError: XdrCodec<RemoteError> = struct(
  (writer, value) => {
    writer.writeInt(value.code);
    writer.writeInt(value.domain);
    optionalString.encode(writer, value.message);
    writer.writeInt(value.level);
    optionalDomain.encode(writer, value.dom);
    optionalString.encode(writer, value.str1);
    optionalString.encode(writer, value.str2);
    optionalString.encode(writer, value.str3);
    writer.writeInt(value.int1);
    writer.writeInt(value.int2);
    optionalNetwork.encode(writer, value.net);
  },
  (reader) => ({
    code: reader.readInt(),
    domain: reader.readInt(),
    message: optionalString.decode(reader),
    level: reader.readInt(),
    dom: optionalDomain.decode(reader),
    str1: optionalString.decode(reader),
    str2: optionalString.decode(reader),
    str3: optionalString.decode(reader),
    int1: reader.readInt(),
    int2: reader.readInt(),
    net: optionalNetwork.decode(reader),
  }),
);

/** Codec of a struct with one field `key` of type `codec` (most bodies here). */
function single<K extends string, T>(key: K, codec: XdrCodec<T>): XdrCodec<Record<K, T>> {
  return struct(
    (writer, value) => codec.encode(writer, value[key]),
    (reader) => ({ [key]: codec.decode(reader) }) as Record<K, T>,
  );
}

const int: XdrCodec<number> = struct(
  (writer, value) => writer.writeInt(value),
  (reader) => reader.readInt(),
);

// ---- REMOTE program ----------------------------------------------------------

/** AUTH_LIST (66) reply `{remote_auth_type types<20>}`; virsh gets `[0]` (AUTH_NONE). */
export interface AuthListReply {
  types: number[];
}
export const authListReply: XdrCodec<AuthListReply> = struct(
  (writer, value) => writer.writeArray(value.types, RpcLimit.AUTH_TYPES, (w, type) => w.writeInt(type)),
  (reader) => ({ types: reader.readArray(RpcLimit.AUTH_TYPES, (r) => r.readInt()) }),
);

/** CONNECT_SUPPORTS_FEATURE (60) `{int feature}` → `{int supported}`. */
export type SupportsFeatureArgs = { feature: number };
export const supportsFeatureArgs: XdrCodec<SupportsFeatureArgs> = single('feature', int);
export type SupportsFeatureReply = { supported: number };
export const supportsFeatureReply: XdrCodec<SupportsFeatureReply> = single('supported', int);

/** CONNECT_OPEN (1) `{remote_string name; unsigned flags}`; the reply is empty. */
export interface ConnectOpenArgs {
  name: string | null;
  flags: number;
}
export const connectOpenArgs: XdrCodec<ConnectOpenArgs> = struct(
  (writer, value) => {
    optionalString.encode(writer, value.name);
    writer.writeUint(value.flags);
  },
  (reader) => ({ name: optionalString.decode(reader), flags: reader.readUint() }),
);

/** CONNECT_GET_TYPE (3) reply `{string type}`: libvirtd answers "QEMU". */
export type GetTypeReply = { type: string };
export const getTypeReply: XdrCodec<GetTypeReply> = single('type', nonnullString);

/** CONNECT_GET_VERSION (4) reply `{unsigned hyper hv_ver}`: major*1e6 + minor*1e3 + micro (7002022 for 7.2.22). */
export type GetVersionReply = { hvVer: bigint };
export const getVersionReply: XdrCodec<GetVersionReply> = struct(
  (writer, value) => writer.writeUhyper(value.hvVer),
  (reader) => ({ hvVer: reader.readUhyper() }),
);

/** CONNECT_GET_URI (110) reply `{string uri}`. */
export type GetUriReply = { uri: string };
export const getUriReply: XdrCodec<GetUriReply> = single('uri', nonnullString);

/** DOMAIN_LOOKUP_BY_ID (22) args `{int id}`. */
export type LookupByIdArgs = { id: number };
export const lookupByIdArgs: XdrCodec<LookupByIdArgs> = single('id', int);

/** DOMAIN_LOOKUP_BY_NAME (23) args `{string name}`. */
export type LookupByNameArgs = { name: string };
export const lookupByNameArgs: XdrCodec<LookupByNameArgs> = single('name', nonnullString);

/** DOMAIN_LOOKUP_BY_UUID (24) args `{opaque uuid[16]}`. */
export type LookupByUuidArgs = { uuid: Buffer };
export const lookupByUuidArgs: XdrCodec<LookupByUuidArgs> = single('uuid', uuid);

/**
 * `{remote_nonnull_domain dom}`: the reply of the three lookups, and the args
 * of DOMAIN_IS_ACTIVE (150), DOMAIN_SUSPEND (34) and DOMAIN_RESUME (28).
 */
export type DomainBody = { dom: Domain };
export const domainBody: XdrCodec<DomainBody> = single('dom', nonnullDomain);

/** DOMAIN_IS_ACTIVE (150) reply `{int active}`. */
export type IsActiveReply = { active: number };
export const isActiveReply: XdrCodec<IsActiveReply> = single('active', int);

// ---- QEMU program ------------------------------------------------------------

/**
 * DOMAIN_MONITOR_COMMAND (1) and DOMAIN_MONITOR_COMMAND_WITH_FILES (7) args
 * `{dom; string cmd; unsigned flags}` (flags: HMP 1).
 */
export interface MonitorCommandArgs {
  dom: Domain;
  cmd: string;
  flags: number;
}
export const monitorCommandArgs: XdrCodec<MonitorCommandArgs> = struct(
  (writer, value) => {
    nonnullDomain.encode(writer, value.dom);
    nonnullString.encode(writer, value.cmd);
    writer.writeUint(value.flags);
  },
  (reader) => ({ dom: nonnullDomain.decode(reader), cmd: nonnullString.decode(reader), flags: reader.readUint() }),
);

/** Procs 1 and 7 reply `{string result}`: QEMU's reply text, a QMP error included. */
export type MonitorCommandReply = { result: string };
export const monitorCommandReply: XdrCodec<MonitorCommandReply> = single('result', nonnullString);

/** DOMAIN_AGENT_COMMAND (3) args `{dom; string cmd; int timeout; unsigned flags}`. */
export interface AgentCommandArgs {
  dom: Domain;
  cmd: string;
  /** Seconds; -1 (as virsh sends) means the default, -2 block forever. */
  timeout: number;
  flags: number;
}
export const agentCommandArgs: XdrCodec<AgentCommandArgs> = struct(
  (writer, value) => {
    nonnullDomain.encode(writer, value.dom);
    nonnullString.encode(writer, value.cmd);
    writer.writeInt(value.timeout);
    writer.writeUint(value.flags);
  },
  (reader) => ({
    dom: nonnullDomain.decode(reader),
    cmd: nonnullString.decode(reader),
    timeout: reader.readInt(),
    flags: reader.readUint(),
  }),
);

/** DOMAIN_AGENT_COMMAND (3) reply `{remote_string result}`. */
export type AgentCommandReply = { result: string | null };
export const agentCommandReply: XdrCodec<AgentCommandReply> = single('result', optionalString);

/**
 * CONNECT_DOMAIN_MONITOR_EVENT_REGISTER (4) args `{remote_domain dom;
 * remote_string event; unsigned flags}`: a null dom means every domain, a
 * null event every event (flags: REGEX 1, NOCASE 2).
 */
export interface MonitorEventRegisterArgs {
  dom: Domain | null;
  event: string | null;
  flags: number;
}
export const monitorEventRegisterArgs: XdrCodec<MonitorEventRegisterArgs> = struct(
  (writer, value) => {
    optionalDomain.encode(writer, value.dom);
    optionalString.encode(writer, value.event);
    writer.writeUint(value.flags);
  },
  (reader) => ({ dom: optionalDomain.decode(reader), event: optionalString.decode(reader), flags: reader.readUint() }),
);

/** Proc 4 reply and DEREGISTER (5) args: `{int callbackID}`. */
export type CallbackIdBody = { callbackID: number };
export const callbackIdBody: XdrCodec<CallbackIdBody> = single('callbackID', int);

/**
 * DOMAIN_MONITOR_EVENT (6), server → client, type MESSAGE:
 * `{int callbackID; dom; string event; hyper seconds; unsigned micros;
 * remote_string details}`; details is the event's `data` as compact JSON, or
 * null when the event has none.
 */
export interface MonitorEventMessage {
  callbackID: number;
  dom: Domain;
  event: string;
  seconds: bigint;
  micros: number;
  details: string | null;
}
export const monitorEventMessage: XdrCodec<MonitorEventMessage> = struct(
  (writer, value) => {
    writer.writeInt(value.callbackID);
    nonnullDomain.encode(writer, value.dom);
    nonnullString.encode(writer, value.event);
    writer.writeHyper(value.seconds);
    writer.writeUint(value.micros);
    optionalString.encode(writer, value.details);
  },
  (reader) => ({
    callbackID: reader.readInt(),
    dom: nonnullDomain.decode(reader),
    event: nonnullString.decode(reader),
    seconds: reader.readHyper(),
    micros: reader.readUint(),
    details: optionalString.decode(reader),
  }),
);
