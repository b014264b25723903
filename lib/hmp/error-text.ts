/**
 * Recognising failure in human-monitor output. HMP reports failures as plain
 * text in a successful reply (FACTS §2: `unknown command: 'frobnicate'`,
 * `Error: 'nope' is not a valid device model name`), so the only signal is
 * the text itself.
 */
const HMP_ERROR_LINE = /^(?:unknown command: |Error: |Could not |Invalid parameter |Parameter '|invalid |Device '[^']*' not found|[\w-]+: (?:extraneous characters|unexpected|missing))/m;

/** The first line of `output` that reads as an HMP error, or null. */
export function hmpErrorText(output: string): string | null {
  const match = HMP_ERROR_LINE.exec(output);
  if (!match) return null;
  const lineEnd = output.indexOf('\n', match.index);
  return output.slice(match.index, lineEnd === -1 ? undefined : lineEnd).replace(/\r$/, '');
}
