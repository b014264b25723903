/**
 * The one error the pass-through API adds to qmpx's tree (lib/errors.ts):
 * the caller passed something unusable. It mirrors libvirt's
 * VIR_ERR_INVALID_ARG, which libvirt raises for the same mistakes (an
 * already tracked callback, an unknown callback id, a bad regex), plus
 * text that is not JSON at all.
 *
 *   QmpxError
 *   └── InvalidArgumentError   code INVALID_ARGUMENT; `position` for JSON text
 */
import { QmpxError, type QmpxErrorOptions } from '../errors.js';

/** The argument cannot be used; nothing was sent and nothing changed. */
export class InvalidArgumentError extends QmpxError {
  override readonly code = 'INVALID_ARGUMENT';

  constructor(
    message: string,
    /** For text that is not JSON: where the problem is, in UTF-16 code units from 0. */
    readonly position?: number,
    options?: QmpxErrorOptions,
  ) {
    super(message, options);
  }
}
