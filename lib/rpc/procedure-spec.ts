/** One call of an RPC program: its two XDR layouts and its name. */
import type { XdrCodec } from './xdr.js';

/** The two layouts of one call, and its name as libvirt's protocol files spell it. */
export interface ProcedureSpec<Args, Reply> {
  readonly name: string;
  readonly args: XdrCodec<Args>;
  readonly reply: XdrCodec<Reply>;
}

export function procedureSpec<Args, Reply>(name: string, args: XdrCodec<Args>, reply: XdrCodec<Reply>): ProcedureSpec<Args, Reply> {
  return { name, args, reply };
}
