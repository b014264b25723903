/**
 * Recognising failure in human-monitor output. HMP reports failures as plain
 * text in a successful reply, so the only signal is the text itself. The
 * patterns are the line starts QEMU 7.2 prints on failure, e.g.
 *
 *   unknown command: 'frobnicate'
 *   Error: 'nope' is not a valid device model name      (every hmp_handle_error)
 *   device_del: string expected                          (argument parsing,
 *   Try "help device_del" for more information            followed by this hint)
 *   stop|s: extraneous characters at the end of line
 *   Device 'nope' not found / invalid CPU index / Can not dump without CPU
 *   Could not open gdbserver on device 'nope:x' / unknown event "nope"
 */
const HMP_ERROR_LINE =
  /^(?:unknown command: |unknown event |Error: |Could not |Can not |Invalid parameter |invalid |Parameter '|Device '[^']*' not found|Try "help [^"]*" for more information|[\w|-]+: (?:extraneous characters|unexpected|missing|[\w ]+ expected))/m;

/** The first line of `output` that reads as an HMP error (without its line end), or null. */
export function hmpErrorText(output: string): string | null {
  const match = HMP_ERROR_LINE.exec(output);
  if (!match) return null;
  const lineEnd = output.indexOf('\n', match.index);
  return output.slice(match.index, lineEnd === -1 ? undefined : lineEnd).replace(/\r$/, '');
}

/**
 * The error as QMP would describe it: the first error line without HMP's
 * `Error: ` prefix (hmp_handle_error prints the QMP error's desc after it).
 * Null when `output` is not an error.
 */
export function hmpErrorDesc(output: string): string | null {
  const line = hmpErrorText(output);
  return line === null ? null : line.replace(/^Error: /, '');
}
