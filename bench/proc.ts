/**
 * What a benchmark reads of another process from /proc (Linux): its
 * memory and the CPU it has used so far.
 */
import { readFileSync } from 'node:fs';

/** Kernel clock ticks per second, in which /proc/PID/stat counts CPU time (USER_HZ, 100 on Linux). */
const CLOCK_TICKS_PER_SECOND = 100;

/** A size line of /proc/PID/status in KiB: VmRSS (resident now) or VmHWM (the peak resident set). */
export function statusKiB(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]);
}

export function residentMiB(pid: number): number {
  return statusKiB(pid) / 1024;
}

/** User + system CPU seconds process `pid` has used so far. */
export function cpuSeconds(pid: number): number {
  // "pid (comm) state ...": comm may hold spaces; utime and stime are fields 14 and 15.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}
