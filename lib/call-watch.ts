/**
 * Told when a call that does not come through one of the proxy's sessions
 * (a libvirt client's monitor command, a NATS request) goes to a monitor,
 * and when it settles, so the command watchdog (lib/proxy/watchdog.ts)
 * sees a QEMU that stops answering those calls as it sees one that stops
 * answering the sessions' commands.
 */
export interface CallWatch {
  /** `command` goes to the monitor now; what this returns is called once, when the call settles (`answered`: QEMU replied). */
  callSent(command: string): (answered: boolean) => void;
}
