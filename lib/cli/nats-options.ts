/**
 * The options `qmpx events` and `qmpx exec` take for a `nats://` target:
 * how to authenticate to the NATS server and trust its certificate. User
 * and password go in the URL (`nats://USER:PASS@HOST`).
 */
import type { Command } from 'commander';
import type { NatsCredentials } from '../nats/client-connection.js';

/** What commander hands over for these options. */
export interface NatsCliOptions {
  natsCreds?: string;
  natsToken?: string;
  natsCa?: string;
  natsCert?: string;
  natsKey?: string;
}

/** Adds the NATS options to a subcommand. */
export function addNatsOptions(command: Command): Command {
  return command
    .option('--nats-creds <file>', 'with a nats:// target: a NATS credentials file (JWT and NKey seed)')
    .option('--nats-token <token>', 'with a nats:// target: a NATS token (or set QMPX_NATS_TOKEN)')
    .option('--nats-ca <file>', "with a nats:// target: the CA (PEM) that signed the NATS server's certificate; turns TLS on")
    .option('--nats-cert <file>', 'with a nats:// target: a client certificate (PEM), for servers that verify clients')
    .option('--nats-key <file>', "with a nats:// target: the client certificate's key (PEM)");
}

/** The options as the fleet client takes them. */
export function natsCredentials(options: NatsCliOptions): NatsCredentials {
  const token = options.natsToken ?? process.env.QMPX_NATS_TOKEN;
  return {
    ...(options.natsCreds === undefined ? {} : { credsFile: options.natsCreds }),
    ...(token === undefined || token === '' ? {} : { token }),
    ...(options.natsCa === undefined ? {} : { tlsCaFile: options.natsCa }),
    ...(options.natsCert === undefined ? {} : { tlsCertFile: options.natsCert }),
    ...(options.natsKey === undefined ? {} : { tlsKeyFile: options.natsKey }),
  };
}

/** Names the NATS options given, for "only with a nats:// target" errors. */
export function natsOptionsGiven(options: NatsCliOptions): string[] {
  const names: Array<[keyof NatsCliOptions, string]> = [
    ['natsCreds', '--nats-creds'],
    ['natsToken', '--nats-token'],
    ['natsCa', '--nats-ca'],
    ['natsCert', '--nats-cert'],
    ['natsKey', '--nats-key'],
  ];
  return names.filter(([key]) => options[key] !== undefined).map(([, flag]) => flag);
}
