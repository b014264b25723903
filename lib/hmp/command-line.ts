/**
 * Which command lines may be typed into a raw HMP socket.
 *
 * The human monitor reads its socket through a line editor, not a parser
 * (docs/monitor-facts.md §3): `\r` and `\n` each run what has been typed so far, TAB
 * completes, DEL deletes, ESC starts a cursor-key sequence, and input past
 * 4,095 bytes is silently dropped. Any of these in a command line would make
 * QEMU run something other than what the caller wrote, and leave the editor
 * in a state that corrupts the next command. So such lines are refused before
 * a byte is written.
 *
 * Over QMP (`human-monitor-command`) there is no line editor and none of this
 * applies; the QMP client does not call this.
 */
import { UnsupportedError } from '../errors.js';

/**
 * The longest command line the editor keeps, in bytes of UTF-8: QEMU's
 * READLINE_CMD_BUF_SIZE is 4,096 including the terminating NUL, and it counts
 * bytes, so a line of multi-byte characters is cut sooner than its length in
 * characters suggests.
 */
export const HMP_MAX_LINE_BYTES = 4095;

const CONTROL_NAMES: Record<number, string> = {
  0x09: 'a TAB (the monitor would complete the word instead of inserting it)',
  0x0a: 'a line feed (the monitor would run the line typed so far as a separate command)',
  0x0d: 'a carriage return (the monitor would run the line typed so far as a separate command)',
  0x1b: 'an ESC (the monitor would read a cursor-key or history sequence)',
  0x7f: 'a DEL (the monitor would delete the previous character)',
};

/**
 * Throws UnsupportedError, naming the character and its position, if
 * `commandLine` cannot be sent to a raw HMP socket as it is: C0 and C1
 * control characters (TAB, CR, LF and ESC included), DEL, unpaired UTF-16
 * surrogates (not encodable as UTF-8), or more than HMP_MAX_LINE_BYTES bytes.
 */
export function checkHmpCommandLine(commandLine: string): void {
  for (let index = 0; index < commandLine.length; index++) {
    const code = commandLine.charCodeAt(index);
    if (code < 0x20 || code === 0x7f || (code >= 0x80 && code <= 0x9f)) {
      const what = CONTROL_NAMES[code] ?? `the control character U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
      throw new UnsupportedError(`HMP command line refused, nothing was sent: it contains ${what} at index ${index}`);
    }
    if (code >= 0xd800 && code <= 0xdfff) {
      const next = commandLine.charCodeAt(index + 1);
      if (code <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        index++;
        continue;
      }
      throw new UnsupportedError(`HMP command line refused, nothing was sent: it contains an unpaired UTF-16 surrogate at index ${index}`);
    }
  }
  const bytes = Buffer.byteLength(commandLine, 'utf8');
  if (bytes > HMP_MAX_LINE_BYTES) {
    throw new UnsupportedError(
      `HMP command line refused, nothing was sent: it is ${bytes} bytes long and the monitor's line editor keeps only ` +
        `${HMP_MAX_LINE_BYTES}; the rest would be dropped silently`,
    );
  }
}
