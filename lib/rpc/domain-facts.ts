/**
 * What QEMU can tell about a domain that libvirt's read calls report:
 * memory, vCPUs, CPU time, disks and network interfaces, machine type. Each
 * query that fails (a QEMU without it, a machine without the device) leaves
 * its fact out instead of failing the call.
 *
 * - Memory: `query-memory-size-summary` (base + plugged), in KiB; used
 *   memory is `query-balloon`'s actual size when a balloon is present.
 * - vCPUs: the length of `query-cpus-fast`.
 * - CPU time: libvirt reads the QEMU process's utime + stime from
 *   /proc/PID/stat; qmpx finds the process through a vCPU thread id
 *   (`query-cpus-fast`), so it is known only when QEMU runs on the same
 *   host with a vCPU, and 0 otherwise.
 * - Disks: `query-block`, one per block backend: target = the backend's
 *   name (else its device's qdev id), source = the inserted image's file.
 * - Interfaces: HMP `info network` (QMP has no query of NICs with their
 *   backends): name, model, MAC and the backend's type.
 */
import { readFile } from 'node:fs/promises';
import type { Monitor } from '../monitor.js';
import { DRIVER_ORIGIN } from '../request.js';

/** Linux's USER_HZ: the unit of /proc/PID/stat's times. */
const CLOCK_TICKS_PER_SECOND = 100;

export interface DiskFact {
  target: string;
  source: string | undefined;
  removable: boolean;
  readOnly: boolean;
  format: string | undefined;
}

export interface InterfaceFact {
  name: string;
  model: string;
  mac: string;
  /** The backend's QEMU type: `user`, `tap`, `socket`, ...; undefined when the NIC has none. */
  backend: string | undefined;
  /** A tap backend's host interface. */
  ifname: string | undefined;
}

export interface DomainFacts {
  maxMemKiB: bigint;
  memoryKiB: bigint;
  vcpus: number;
  cpuTimeNs: bigint;
}

async function query<T>(monitor: Monitor, command: string, args?: object): Promise<T | undefined> {
  try {
    return await monitor.execute<T>(command, args, { origin: DRIVER_ORIGIN });
  } catch {
    return undefined;
  }
}

/** Memory, vCPUs and CPU time, for DOMAIN_GET_INFO. */
export async function domainFacts(monitor: Monitor): Promise<DomainFacts> {
  const [memory, balloon, cpus] = await Promise.all([
    query<{ 'base-memory': number; 'plugged-memory'?: number }>(monitor, 'query-memory-size-summary'),
    query<{ actual: number }>(monitor, 'query-balloon'),
    query<Array<{ 'thread-id': number }>>(monitor, 'query-cpus-fast'),
  ]);
  const maxMemKiB = memory === undefined ? 0n : BigInt(memory['base-memory'] + (memory['plugged-memory'] ?? 0)) / 1024n;
  const memoryKiB = balloon === undefined ? maxMemKiB : BigInt(balloon.actual) / 1024n;
  return { maxMemKiB, memoryKiB, vcpus: cpus?.length ?? 0, cpuTimeNs: await processCpuTimeNs(cpus?.[0]?.['thread-id']) };
}

/** utime + stime of the process that owns thread `threadId`, in ns; 0 when it cannot be read. */
async function processCpuTimeNs(threadId: number | undefined): Promise<bigint> {
  if (threadId === undefined) return 0n;
  try {
    const status = await readFile(`/proc/${threadId}/status`, 'utf8');
    const tgid = /^Tgid:\s*(\d+)$/m.exec(status)?.[1];
    if (tgid === undefined) return 0n;
    const stat = await readFile(`/proc/${tgid}/stat`, 'utf8');
    // Fields after the parenthesised command name, which may itself hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = BigInt(fields[11] ?? '0') + BigInt(fields[12] ?? '0');
    return (ticks * 1_000_000_000n) / BigInt(CLOCK_TICKS_PER_SECOND);
  } catch {
    return 0n;
  }
}

interface BlockInfo {
  device: string;
  qdev?: string;
  removable: boolean;
  inserted?: { file: string; ro: boolean; drv: string };
}

/** One entry per block backend of `query-block`. */
export async function diskFacts(monitor: Monitor): Promise<DiskFact[]> {
  const blocks = (await query<BlockInfo[]>(monitor, 'query-block')) ?? [];
  return blocks.map((block) => ({
    target: block.device !== '' ? block.device : qdevId(block.qdev ?? ''),
    source: block.inserted?.file,
    removable: block.removable,
    readOnly: block.inserted?.ro ?? false,
    format: block.inserted?.drv,
  }));
}

/** `/machine/peripheral/disk0/virtio-backend` → `disk0`. */
function qdevId(path: string): string {
  const parts = path.split('/').filter((part) => part !== '' && part !== 'virtio-backend');
  return parts[parts.length - 1] ?? path;
}

/** NICs from HMP `info network`: `name: index=0,type=nic,model=M,macaddr=X` then ` \ peer: index=0,type=T,...`. */
export async function interfaceFacts(monitor: Monitor): Promise<InterfaceFact[]> {
  let text: string;
  try {
    text = await monitor.hmp('info network', { origin: DRIVER_ORIGIN });
  } catch {
    return [];
  }
  return parseInfoNetwork(text);
}

/** The NICs of an `info network` text. */
export function parseInfoNetwork(text: string): InterfaceFact[] {
  const nics: InterfaceFact[] = [];
  for (const line of text.split(/\r?\n/)) {
    const peer = /^\s+\\ [^:]+: (.*)$/.exec(line);
    if (peer !== null) {
      const nic = nics[nics.length - 1];
      if (nic === undefined || nic.backend !== undefined) continue;
      const options = optionsOf(peer[1]!);
      nic.backend = options.get('type');
      nic.ifname = options.get('ifname');
      continue;
    }
    const entry = /^(\S[^:]*): (.*)$/.exec(line);
    if (entry === null) continue;
    const options = optionsOf(entry[2]!);
    if (options.get('type') !== 'nic') continue;
    nics.push({ name: entry[1]!, model: options.get('model') ?? '', mac: options.get('macaddr') ?? '', backend: undefined, ifname: undefined });
  }
  return nics;
}

function optionsOf(text: string): Map<string, string> {
  const options = new Map<string, string>();
  for (const pair of text.split(',')) {
    const at = pair.indexOf('=');
    if (at > 0) options.set(pair.slice(0, at), pair.slice(at + 1));
  }
  return options;
}

/** The machine facts of the XML's `<domain type>` and `<os><type>`. */
export async function machineFacts(monitor: Monitor): Promise<{ kvm: boolean; arch: string | undefined; machine: string | undefined }> {
  const [kvm, target, machine] = await Promise.all([
    query<{ enabled: boolean }>(monitor, 'query-kvm'),
    query<{ arch: string }>(monitor, 'query-target'),
    query<string>(monitor, 'qom-get', { path: '/machine', property: 'type' }),
  ]);
  return { kvm: kvm?.enabled ?? false, arch: target?.arch, machine: machine?.replace(/-machine$/, '') };
}
