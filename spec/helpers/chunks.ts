/** Cutting test input into chunks, for parsers that must give the same result however their input arrives. */

/** Splits `input` at the given cut points (any chunking, empty chunks included). */
export function chunked(input: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((cut) => cut % (input.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let previous = 0;
  for (const point of [...points, input.length]) {
    chunks.push(input.subarray(previous, point));
    previous = point;
  }
  return chunks;
}
