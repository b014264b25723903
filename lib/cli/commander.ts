/**
 * commander, for every subcommand. Loaded with require(): commander is a
 * CommonJS package, and imported as ES modules it is read twice over (its
 * ES wrapper, then a scan of its source for export names) on every run of
 * `qmpx`, where require() only runs it.
 */
import { createRequire } from 'node:module';
import type * as CommanderTypes from 'commander';

const commander = createRequire(import.meta.url)('commander') as typeof CommanderTypes;

export const { Command, InvalidArgumentError, Option } = commander;
export type Command = CommanderTypes.Command;
export type InvalidArgumentError = CommanderTypes.InvalidArgumentError;
export type Option = CommanderTypes.Option;
