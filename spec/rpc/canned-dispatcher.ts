/**
 * A Dispatcher for every REMOTE and QEMU procedure of the catalog, each
 * answered with a plausible canned reply (some throw, some are
 * asynchronous), for feeding a whole RpcConnection arbitrary bytes without
 * a VM behind it.
 */
import { findProcedure } from '../../lib/rpc/catalog.js';
import type { ProcedureSpec } from '../../lib/rpc/procedure-spec.js';
import { Dispatcher, ProgramTable, procedure } from '../../lib/rpc/dispatch.js';
import { RpcError } from '../../lib/rpc/rpc-error.js';
import type { Domain } from '../../lib/rpc/messages.js';
import { ErrorCode, ErrorDomain, QemuProc, RemoteProc, RpcProgram } from '../../lib/rpc/protocol.js';

const lab1: Domain = { name: 'lab1', uuid: Buffer.from('3a1676389b404ecb9fad87007c96f632', 'hex'), id: 1 };

/** A plausible answer per procedure name; some throw, some are asynchronous. */
const cannedReplies: Record<string, (args: unknown) => unknown> = {
  AUTH_LIST: () => ({ types: [0] }),
  CONNECT_SUPPORTS_FEATURE: () => ({ supported: 0 }),
  CONNECT_GET_TYPE: () => ({ type: 'QEMU' }),
  CONNECT_GET_VERSION: () => ({ hvVer: 7002022n }),
  CONNECT_GET_URI: () => ({ uri: 'qemu:///system' }),
  DOMAIN_LOOKUP_BY_ID: () => ({ dom: lab1 }),
  DOMAIN_LOOKUP_BY_UUID: () => ({ dom: lab1 }),
  DOMAIN_LOOKUP_BY_NAME: (args) => {
    const { name } = args as { name: string };
    if (name !== 'lab1') throw RpcError.report(ErrorCode.NO_DOMAIN, ErrorDomain.QEMU, `no domain with matching name '${name}'`);
    return { dom: lab1 };
  },
  DOMAIN_IS_ACTIVE: () => ({ active: 1 }),
  DOMAIN_MONITOR_COMMAND: async () => {
    await new Promise((resolve) => setImmediate(resolve));
    return { result: '{"return":{}}' };
  },
  DOMAIN_MONITOR_COMMAND_WITH_FILES: () => Promise.resolve({ result: '{"return":{}}' }),
  DOMAIN_AGENT_COMMAND: () => {
    throw RpcError.report(ErrorCode.ARGUMENT_UNSUPPORTED, ErrorDomain.QEMU, 'QEMU guest agent is not configured');
  },
  CONNECT_DOMAIN_MONITOR_EVENT_REGISTER: () => ({ callbackID: 1 }),
  CONNECT_LIST_ALL_DOMAINS: () => ({ domains: [lab1], count: 1 }),
  DOMAIN_GET_STATE: () => ({ state: 3, reason: 1 }),
  DOMAIN_GET_INFO: () => Promise.resolve({ state: 3, maxMemKiB: 65536n, memoryKiB: 65536n, vcpus: 1, cpuTimeNs: 280_000_000n }),
  DOMAIN_GET_OS_TYPE: () => ({ text: 'hvm' }),
  DOMAIN_IS_PERSISTENT: () => ({ value: 0 }),
  DOMAIN_GET_AUTOSTART: () => ({ value: 0 }),
  DOMAIN_HAS_MANAGED_SAVE_IMAGE: () => ({ value: 0 }),
  NODE_GET_SECURITY_MODEL: () => ({ model: 'none', doi: '0' }),
  DOMAIN_GET_SECURITY_LABEL: () => ({ label: '', enforcing: 0 }),
  DOMAIN_GET_MESSAGES: () => ({ msgs: [] }),
  DOMAIN_GET_XML_DESC: () => ({ text: "<domain type='qemu'/>\n" }),
  CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY: () => ({ callbackID: 1 }),
};

/** The dispatcher; handler or codec failures that were not the client's fault go to `onUnexpectedError`. */
export function cannedDispatcher(onUnexpectedError: (error: unknown) => void): Dispatcher {
  const table = (program: number, procs: Record<string, number>): ProgramTable => {
    const built = new ProgramTable(program);
    for (const proc of Object.values(procs)) {
      const spec = findProcedure(program, proc) as ProcedureSpec<unknown, unknown> | undefined;
      if (!spec) continue;
      built.define(proc, procedure(spec, (args) => (cannedReplies[spec.name] ?? (() => undefined))(args)));
    }
    return built;
  };
  return new Dispatcher([table(RpcProgram.REMOTE, RemoteProc), table(RpcProgram.QEMU, QemuProc)], { onUnexpectedError });
}
