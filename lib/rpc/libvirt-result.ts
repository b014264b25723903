/**
 * The result string of QEMU proc 1 / 7 in the shape libvirt 9.0 gives it
 * (as virsh and libvirt-python print it; spec/rpc/vectors/virsh-qemu-monitor-command.txt):
 *
 *   {"return":{"status":"running",...},"id":"libvirt-411"}
 *   {"id":"libvirt-416","error":{"class":"CommandNotFound","desc":"..."}}
 *   {"error":{"class":"GenericError","desc":"QMP input lacks member 'execute'"}}
 *
 * libvirt adds its own `"id":"libvirt-N"` to a command only when the object
 * has an `execute` member (qemuMonitorJSONCommandWithFd), QEMU echoes it —
 * after `return`, before `error` — and libvirt hands back its re-serialised,
 * compact copy of QEMU's reply. So `{}`, `[1,2]` and `{"exec-oob":...}`
 * come back id-less, everything with `execute` with the id.
 *
 * qmpx's pass-through (`monitorCommand`) sends no id of libvirt's, so the id
 * is put back here: the reply is re-serialised compactly (as libvirt does;
 * numbers kept exact by the lossless JSON module) with the endpoint's own
 * per-domain counter in libvirt's id member and position. Scripts that parse
 * virsh's output, or match its `libvirt-` prefix, keep working.
 */
import { parseJsonLossless, stringifyJson } from '../qmp/json.js';

/** Whether `cmd` is a JSON object with a top-level member `key`. */
export function hasMember(cmd: string, key: string): boolean {
  let parsed: unknown;
  try {
    parsed = parseJsonLossless(cmd);
  } catch {
    return false;
  }
  return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) && Object.hasOwn(parsed, key);
}

/** Whether libvirt would have put its id on `cmd`: a JSON object with an `execute` member. */
export function carriesLibvirtId(cmd: string): boolean {
  return hasMember(cmd, 'execute');
}

/**
 * libvirt's result text for QEMU's reply `output` to `cmd` (QMP, not HMP):
 * compact, with `"id":"libvirt-<id>"` when `carriesLibvirtId(cmd)`. Output
 * that is not a JSON object is returned unchanged.
 */
export function libvirtResult(output: string, cmd: string, id: number): string {
  let reply: unknown;
  try {
    reply = parseJsonLossless(output);
  } catch {
    return output;
  }
  if (typeof reply !== 'object' || reply === null || Array.isArray(reply)) return output;
  const members = Object.entries(reply as Record<string, unknown>).filter(([key]) => key !== 'id');
  if (!carriesLibvirtId(cmd)) return stringifyJson(Object.fromEntries(members));
  const idMember: [string, unknown] = ['id', `libvirt-${id}`];
  const isError = members.some(([key]) => key === 'error');
  const ordered = isError ? [idMember, ...members] : [...members, idMember];
  return stringifyJson(Object.fromEntries(ordered));
}
