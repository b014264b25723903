/**
 * HMP wire text as QEMU 7.2.22 sends it (docs/monitor-facts.md §3), for scripting fake
 * peers and feeding the reader. spec/hmp/reader.spec.ts checks `qemuEcho`
 * against bytes captured from QEMU.
 */

/** The banner line QEMU sends on every connect, CRLF included. */
export const BANNER = "QEMU 7.2.22 monitor - type 'help' for more information\r\n";
/** The prompt, which has no newline after it. */
export const PROMPT = '(qemu) ';
/** What a fake HMP peer sends on accept. */
export const GREETING = BANNER + PROMPT;

/** The line editor's echo of `line`: after each byte, cursor back, the whole line, erase to end; then Enter. */
export function qemuEcho(line: string): string {
  if (line === '') return '\r\n';
  let echo = '';
  for (let length = 1; length <= line.length; length++) echo += '\x1b[D'.repeat(length - 1) + line.slice(0, length) + '\x1b[K';
  return `${echo}\r\n`;
}

/** A complete reply to `line`: echo, `output` (give it its CRLFs), prompt. */
export function hmpReply(line: string, output = ''): string {
  return qemuEcho(line) + output + PROMPT;
}
