/**
 * The order in which QEMU's QDict iterates its members, which decides both
 * which bad member of an input QEMU reports first and where members stand
 * in what QEMU prints: bucket `tdb_hash(key) % 512` ascending, and within a
 * bucket the member added last first. So `{"foo":1,"bar":2}` is visited
 * `bar` first, and a reply prints `return` before `id` but `id` before
 * `error`.
 */
import { modifiedUtf8 } from './unicode.js';

const QDICT_BUCKET_MAX = 512;

/** The members in the order QEMU's QDict iterates them. */
export function qdictOrder<T extends { key: string }>(members: readonly T[]): T[] {
  return members
    .map((member, index) => ({ member, index, bucket: tdbHash(member.key) % QDICT_BUCKET_MAX }))
    .sort((a, b) => a.bucket - b.bucket || b.index - a.index)
    .map(({ member }) => member);
}

/**
 * QEMU's qdict hash (`tdb_hash`, from gdbm via tdb) over the key's bytes in
 * QEMU's modified UTF-8.
 */
export function tdbHash(key: string): number {
  const bytes = modifiedUtf8(key);
  let value = Math.imul(0x238f13af, bytes.length) >>> 0;
  for (let index = 0; index < bytes.length; index++) {
    value = (value + (bytes[index]! << ((index * 5) % 24))) >>> 0;
  }
  return (Math.imul(1103515243, value) + 12345) >>> 0;
}
