/**
 * What `hmp()` gives callers: HMP output with QEMU's line ends normalised.
 *
 * QEMU's monitor turns every `\n` it prints into `\r\n`, on the HMP socket
 * and inside `human-monitor-command` replies alike (docs/monitor-facts.md §2, §3), because
 * the text was meant for a terminal. `hmp()` returns it with each `\r\n`
 * replaced by `\n`, on every protocol, so the same command gives the same
 * string whichever monitor ran it. A lone `\r` is left as it is.
 *
 * `execute('human-monitor-command', { 'command-line': ... })` is not
 * normalised, on QMP or HMP: it returns QEMU's text with its CRLFs, which is
 * what libvirt's pass-through hands to its callers (docs/monitor-facts.md §5 captures:
 * `{"result": "VM status: running\r\n"}`).
 */

/** Replaces every CRLF in `output` with LF. */
export function normaliseHmpOutput(output: string): string {
  return output.includes('\r') ? output.replaceAll('\r\n', '\n') : output;
}
