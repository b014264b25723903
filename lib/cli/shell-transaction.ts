/**
 * qmp-shell's transaction form in `qmpx shell`: the lines between
 * `transaction(` and `)` are the actions of ONE `transaction` command, sent
 * when `)` is entered; nothing runs before that (QEMU applies the actions
 * all or none, which running them one by one would not).
 *
 *   (QEMU) transaction(
 *   TRANS> block-dirty-bitmap-add node=drive0 name=bitmap1
 *   TRANS> block-dirty-bitmap-clear node=drive0 name=bitmap0
 *   TRANS> )
 *   {"return":{}}
 *
 * One line works too: `transaction( ACTION key=value ... )`. An action line
 * is NAME key=value... or NAME {JSON} as a command's (lib/cli/command-line.ts),
 * becoming `{"type": NAME, "data": ARGUMENTS}`; a line that is a JSON
 * object is taken as the action itself. Argument text is kept as written.
 */
import { buildQmpCommand, CommandLineError } from './command-line.js';
import { isJsonObjectText } from './json-text.js';

export const TRANSACTION_OPEN = 'transaction(';
export const TRANSACTION_CLOSE = ')';
/** qmp-shell's prompt while a transaction is being written. */
export const TRANSACTION_PROMPT = 'TRANS>';

/** What one typed line did to the transaction being written. */
export type TransactionStep =
  /** Not a transaction line: run it as usual. */
  | { kind: 'not-transaction' }
  /** Taken: an opening, or actions kept for later. */
  | { kind: 'kept' }
  /** The transaction is complete: send `commandText`. */
  | { kind: 'complete'; commandText: string };

/** The transaction being written in one shell, if any. */
export class TransactionBuilder {
  private actions: string[] | undefined;

  /** True between `transaction(` and `)`. */
  get open(): boolean {
    return this.actions !== undefined;
  }

  /** Forgets the transaction being written (Ctrl-C); true if there was one. */
  cancel(): boolean {
    const wasOpen = this.open;
    this.actions = undefined;
    return wasOpen;
  }

  /**
   * Takes the words of one QMP line. Throws CommandLineError for an action
   * that cannot be made (the transaction stays open and keeps what it had).
   */
  take(words: readonly string[]): TransactionStep {
    let rest = [...words];
    if (rest[0] === TRANSACTION_OPEN) {
      this.actions = [];
      rest.shift();
    } else if (this.actions === undefined) {
      return { kind: 'not-transaction' };
    }
    const actions = this.actions!;
    if (rest[0] === TRANSACTION_CLOSE) {
      if (rest.length > 1) throw new CommandLineError(`unexpected input after "${TRANSACTION_CLOSE}" closing the transaction: ${rest.slice(1).join(' ')}`);
      return this.complete(actions);
    }
    if (rest.length === 0) return { kind: 'kept' };
    const closes = rest[rest.length - 1] === TRANSACTION_CLOSE;
    if (closes) rest = rest.slice(0, -1);
    actions.push(actionText(rest));
    return closes ? this.complete(actions) : { kind: 'kept' };
  }

  private complete(actions: readonly string[]): TransactionStep {
    this.actions = undefined;
    return { kind: 'complete', commandText: `{"execute":"transaction","arguments":{"actions":[${actions.join(',')}]}}` };
  }
}

/** One action's JSON text: `{"type":NAME,"data":ARGUMENTS}`, or the line itself when it is a JSON object. */
function actionText(words: readonly string[]): string {
  const whole = words.join(' ');
  if (isJsonObjectText(whole)) return whole;
  const [name] = words as [string];
  const command = buildQmpCommand(words);
  // buildQmpCommand writes `{"execute":NAME}` or `{"execute":NAME,"arguments":ARGS}`, ARGS as typed.
  const head = `{"execute":${JSON.stringify(name)}`;
  const argumentsText = command === `${head}}` ? '{}' : command.slice(`${head},"arguments":`.length, -1);
  return `{"type":${JSON.stringify(name)},"data":${argumentsText}}`;
}
