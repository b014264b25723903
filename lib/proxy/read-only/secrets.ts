/**
 * Which `qom-get` properties a read-only socket refuses: those that hold
 * secret material or lead to it.
 *
 * The rule is on the property name alone, wherever the path points. QEMU
 * resolves a `qom-get` path through links and also accepts a partial path
 * (`sec0` finds `/objects/sec0`), so a rule on paths could be walked
 * around; a property name is matched exactly by QEMU, so a rule on names
 * cannot. It costs no extra round trip and no reply reordering.
 *
 * The names come from every property of every type of QEMU 7.2 (as
 * `qom-list-properties` lists them): `secret` (`data`, `file`, `iv`,
 * `keyid`), `secret_keyring` (`serial`, `keyid`, `iv`), `tls-creds-*` and
 * `tls-cipher-suites` (`dir`; `passwordid` on x509, `username` on psk), `sev-guest`
 * (`dh-cert-file`, `session-file`). The fragments refuse whole families a
 * later QEMU may add to (`password-secret`, `key-secret`, `passphrase`,
 * file paths). A few harmless properties share those names (a disk's
 * `serial`, a device's `romfile`); refusing them costs an observer little.
 */

/** Property names refused as written. */
export const SECRET_PROPERTY_NAMES: ReadonlySet<string> = new Set(['data', 'iv', 'dir', 'username', 'serial']);

/** Property names containing any of these (in any letter case) are refused. */
export const SECRET_PROPERTY_FRAGMENTS: readonly string[] = ['secret', 'pass', 'key', 'cred', 'cert', 'token', 'session', 'file', 'path'];

/** True when a read-only client may not read the property of that name. */
export function isSecretProperty(name: string): boolean {
  if (SECRET_PROPERTY_NAMES.has(name)) return true;
  const lower = name.toLowerCase();
  return SECRET_PROPERTY_FRAGMENTS.some((fragment) => lower.includes(fragment));
}
