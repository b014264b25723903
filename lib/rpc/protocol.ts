/**
 * The vocabulary of libvirt's RPC wire protocol as libvirt 9.0 speaks it
 * (docs/monitor-facts.md §6): program numbers, message types and statuses, the procedure
 * numbers a minimal endpoint meets, feature numbers, error codes, domains and
 * levels, and the protocol's size limits. Numbers only; the body layouts are
 * in messages.ts, framing in framing.ts.
 *
 * Every value here was checked against the bytes in
 * spec/rpc/vectors/mitm-*.log (recorded libvirt 9.0 traffic) or against
 * libvirt's .x protocol files.
 */

/** Program numbers: the first header word of every message. */
export const RpcProgram = {
  /** remote_protocol.x: the ordinary libvirt API. */
  REMOTE: 0x20008086,
  /** qemu_protocol.x: libvirt-qemu's pass-through API (a separate program on the same socket). */
  QEMU: 0x20008087,
  /** virkeepaliveprotocol.x: ASCII "keep". */
  KEEPALIVE: 0x6b656570,
} as const;

/** Every program above is at protocol version 1. */
export const RPC_PROTOCOL_VERSION = 1;

/** Header `type` (virNetMessageType). */
export const MessageType = {
  CALL: 0,
  REPLY: 1,
  /** Unsolicited, never answered: events, keepalive PING/PONG. */
  MESSAGE: 2,
  STREAM: 3,
  /** A CALL whose body starts with a u32 count of file descriptors passed by SCM_RIGHTS. */
  CALL_WITH_FDS: 4,
  REPLY_WITH_FDS: 5,
  STREAM_HOLE: 6,
} as const;

/** Header `status` (virNetMessageStatus). */
export const MessageStatus = {
  OK: 0,
  /** The body is a remote_error. */
  ERROR: 1,
  CONTINUE: 2,
} as const;

/** REMOTE program procedures a minimal endpoint answers or meets in the captures. */
export const RemoteProc = {
  CONNECT_OPEN: 1,
  CONNECT_CLOSE: 2,
  CONNECT_GET_TYPE: 3,
  CONNECT_GET_VERSION: 4,
  DOMAIN_LOOKUP_BY_ID: 22,
  DOMAIN_LOOKUP_BY_NAME: 23,
  DOMAIN_LOOKUP_BY_UUID: 24,
  /** Sent by libvirt-python around a monitor-event test (mitm-py). */
  DOMAIN_RESUME: 28,
  /** Sent by libvirt-python around a monitor-event test (mitm-py). */
  DOMAIN_SUSPEND: 34,
  CONNECT_SUPPORTS_FEATURE: 60,
  AUTH_LIST: 66,
  CONNECT_GET_URI: 110,
  /** Sent by virt-qemu-qmp-proxy (mitm-qmpproxy). */
  DOMAIN_IS_ACTIVE: 150,
  CONNECT_REGISTER_CLOSE_CALLBACK: 360,
  CONNECT_UNREGISTER_CLOSE_CALLBACK: 361,
  // The domain procedures (domain-program.ts) and domain event callbacks (domain-events.ts).
  DOMAIN_DESTROY: 12,
  DOMAIN_SHUTDOWN: 33,
  DOMAIN_GET_XML_DESC: 14,
  DOMAIN_GET_AUTOSTART: 15,
  DOMAIN_GET_INFO: 16,
  DOMAIN_GET_OS_TYPE: 19,
  DOMAIN_REBOOT: 27,
  DOMAIN_GET_SECURITY_LABEL: 121,
  NODE_GET_SECURITY_MODEL: 122,
  DOMAIN_IS_PERSISTENT: 151,
  DOMAIN_HAS_MANAGED_SAVE_IMAGE: 183,
  DOMAIN_GET_STATE: 212,
  DOMAIN_DESTROY_FLAGS: 234,
  DOMAIN_RESET: 245,
  DOMAIN_SHUTDOWN_FLAGS: 258,
  CONNECT_LIST_ALL_DOMAINS: 273,
  CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY: 316,
  CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY: 317,
  /** Server → client, type MESSAGE, serial 1. */
  DOMAIN_EVENT_CALLBACK_LIFECYCLE: 318,
  /** Server → client, type MESSAGE, serial 1. */
  DOMAIN_EVENT_CALLBACK_REBOOT: 319,
  DOMAIN_GET_MESSAGES: 426,
} as const;

/** QEMU program procedures. */
export const QemuProc = {
  DOMAIN_MONITOR_COMMAND: 1,
  DOMAIN_AGENT_COMMAND: 3,
  CONNECT_DOMAIN_MONITOR_EVENT_REGISTER: 4,
  CONNECT_DOMAIN_MONITOR_EVENT_DEREGISTER: 5,
  /** Server → client, type MESSAGE; libvirt sends it with serial 1 (mitm-ev). */
  DOMAIN_MONITOR_EVENT: 6,
  /** Same body as DOMAIN_MONITOR_COMMAND; usually type CALL_WITH_FDS. */
  DOMAIN_MONITOR_COMMAND_WITH_FILES: 7,
} as const;

/** KEEPALIVE program procedures: both type MESSAGE, serial 0, empty body. */
export const KeepaliveProc = {
  PING: 1,
  PONG: 2,
} as const;

/** Feature numbers asked with REMOTE CONNECT_SUPPORTS_FEATURE (virDrvFeature). */
export const Feature = {
  FD_PASSING: 8,
  PROGRAM_KEEPALIVE: 10,
  REMOTE_EVENT_CALLBACK: 14,
  REMOTE_CLOSE_CALLBACK: 15,
} as const;

/** remote_auth_type: what AUTH_LIST returns. */
export const AuthType = {
  NONE: 0,
  SASL: 1,
  POLKIT: 2,
} as const;

/** QEMU DOMAIN_MONITOR_COMMAND flags. */
export const MonitorCommandFlag = { HMP: 1 } as const;

/** QEMU CONNECT_DOMAIN_MONITOR_EVENT_REGISTER flags; filtering happens on the server. */
export const MonitorEventFlag = { REGEX: 1, NOCASE: 2 } as const;

/** virErrorNumber values an endpoint sends (remote_error.code). */
export const ErrorCode = {
  INTERNAL_ERROR: 1,
  NO_SUPPORT: 3,
  /** Read-only connections asking for a write (virReportRestrictedError). */
  OPERATION_DENIED: 29,
  INVALID_ARG: 8,
  OPERATION_FAILED: 9,
  RPC: 39,
  NO_DOMAIN: 42,
  OPERATION_INVALID: 55,
  ARGUMENT_UNSUPPORTED: 74,
} as const;
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** virErrorDomain values (remote_error.domain): where an error was raised. */
export const ErrorDomain = {
  NONE: 0,
  RPC: 7,
  QEMU: 10,
  // The files of libvirt's public API per object (libvirt-storage.c, libvirt-network.c, ...).
  STORAGE: 18,
  NETWORK: 19,
  NODEDEV: 22,
  INTERFACE: 26,
  SECRET: 30,
  NWFILTER: 33,
  DOMAIN_SNAPSHOT: 35,
  /** libvirt-domain.c / libvirt-qemu.c: the public API entry points' own checks (read-only). */
  DOM: 20,
} as const;

/** virErrorLevel values (remote_error.level). */
export const ErrorLevel = {
  NONE: 0,
  WARNING: 1,
  ERROR: 2,
} as const;

/**
 * virErrorMsg()'s "with detail" template per code, libvirt 9.0 wording. A
 * reported error carries the template as str1, the detail as str2, and the
 * template filled in as its message: the captures show
 * `str1 "invalid argument: %s"`, `str2 "at most 1 fd ..."`,
 * `message "invalid argument: at most 1 fd ..."` (mitm-fds), and likewise
 * for INTERNAL_ERROR, NO_DOMAIN and ARGUMENT_UNSUPPORTED. RPC's template is
 * the bare detail, so `unknown procedure: N` reaches the client as written.
 */
export const ERROR_TEMPLATES: Readonly<Record<ErrorCodeValue, string>> = {
  [ErrorCode.INTERNAL_ERROR]: 'internal error: %s',
  [ErrorCode.NO_SUPPORT]: 'this function is not supported by the connection driver: %s',
  [ErrorCode.OPERATION_DENIED]: 'operation forbidden: %s',
  [ErrorCode.INVALID_ARG]: 'invalid argument: %s',
  [ErrorCode.OPERATION_FAILED]: 'operation failed: %s',
  [ErrorCode.RPC]: '%s',
  [ErrorCode.NO_DOMAIN]: 'Domain not found: %s',
  [ErrorCode.OPERATION_INVALID]: 'Requested operation is not valid: %s',
  [ErrorCode.ARGUMENT_UNSUPPORTED]: 'argument unsupported: %s',
};

/** Size limits of the protocol (virnetprotocol.x, remote_protocol.x). */
export const RpcLimit = {
  /** VIR_NET_MESSAGE_MAX: header + body, i.e. the length word's value minus its own 4 bytes. */
  MESSAGE_BYTES: 32 * 1024 * 1024,
  /** VIR_NET_MESSAGE_STRING_MAX / REMOTE_STRING_MAX, bytes of one string. */
  STRING_BYTES: 4 * 1024 * 1024,
  /** VIR_NET_MESSAGE_NUM_FDS_MAX: file descriptors one message may announce. */
  FDS_PER_MESSAGE: 32,
  /** REMOTE_AUTH_TYPE_LIST_MAX: entries in an AUTH_LIST reply. */
  AUTH_TYPES: 20,
} as const;

/** The 4-byte big-endian length word that starts every message counts itself. */
export const LENGTH_WORD_BYTES = 4;
/** Six 32-bit header words: prog, vers, proc, type, serial, status. */
export const HEADER_BYTES = 24;
