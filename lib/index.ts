/** Entry 'qmpx': connect to a QEMU monitor and use it. */
export { connect, connectAgent, detectProtocol, DEFAULT_GREETING_TIMEOUT_MS } from './monitor.js';
export type {
  Monitor,
  MonitorOptions,
  MonitorProtocol,
  ExecuteOptions,
  HmpOptions,
  CloseInfo,
  GuestAgent,
  RawCommands,
  RawRequestOptions,
  QmpRelay,
  QmpReply,
  QmpEventFrame,
} from './contract.js';
export type { ConnectOptions } from './transport.js';
export { parseTarget } from './transport.js';
export type { MonitorState } from './state.js';
export type { RequestOrigin } from './request.js';
export type { QmpEvent, QmpGreeting, QmpTimestamp, QmpVersion } from './qmp/wire.js';
export type { Logger, LogLevel } from './log.js';
export { silentLogger } from './log.js';
export {
  QmpxError,
  QmpError,
  HmpError,
  ProtocolError,
  ConnectionClosedError,
  TimeoutError,
  GreetingTimeoutError,
  AbortError,
  UnsupportedError,
  StateError,
  InvalidArgumentError,
} from './errors.js';
export { waitForEvent, listenForEvents, EventQueueOverflowError, DEFAULT_MAX_QUEUED_EVENTS } from './event-wait.js';
export type { TypedEvent, WaitForEventOptions, ListenOptions, EventSource } from './event-wait.js';
export { ArgumentsRefusedError, QapiSchemaError } from './qapi/errors.js';
export type { ValidateMode, ValidationOptions } from './qapi/validate.js';
export type { CompatAction, CompatPolicy } from './qapi/policy.js';
export type { QmpCommandMap, QmpEventMap, KnownCommand, KnownEvent, CommandArguments, CommandReturn, EventData } from './qapi/typed.js';
export { connectNats, type NatsMonitorOptions } from './nats/connect-nats.js';
export { OutcomeUnknownError, NoResponderError, PermissionDeniedError } from './nats/remote-errors.js';
