/**
 * The JetStream stream that keeps every VM's events for replay:
 *
 *   name       QMPX_EVENTS (configurable)
 *   subjects   qmpx.*.*.evt.>          every host, every VM, every event
 *   retention  limits: events older than maxAgeSeconds (default 1 day) or
 *              past maxBytes in total (default 1 GiB) are removed, oldest
 *              first (discard old); nothing waits on consumers
 *   storage    file
 *   dedup      duplicate window (default 2 minutes): an event published
 *              again with the same Nats-Msg-Id within it is stored once
 *
 * `serve` creates the stream when it is missing. A stream of that name that
 * exists with other settings is left as it is (an operator may have tuned
 * it) and said so in the log.
 */
import { DiscardPolicy, JetStreamApiError, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { Logger } from '../log.js';
import type { EventStreamConfig } from './config.js';
import { SUBJECT_ROOT } from './subjects.js';

/** Every event subject of the fleet. */
export const EVENT_SUBJECTS = `${SUBJECT_ROOT}.*.*.evt.>`;

/** JetStream's error code for a stream name in use with another configuration. */
const STREAM_NAME_IN_USE = 10058;

export function eventStreamSettings(config: EventStreamConfig): Partial<StreamConfig> & { name: string } {
  return {
    name: config.stream,
    subjects: [EVENT_SUBJECTS],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(config.maxAgeSeconds * 1000),
    max_bytes: config.maxBytes,
    duplicate_window: nanos(config.duplicateWindowSeconds * 1000),
  };
}

/** Creates the stream unless it exists; rejects on anything but "exists with other settings", which is logged. */
export async function ensureEventStream(manager: JetStreamManager, config: EventStreamConfig, logger: Logger): Promise<void> {
  const settings = eventStreamSettings(config);
  try {
    await manager.streams.add(settings);
    return;
  } catch (error) {
    if (!(error instanceof JetStreamApiError) || error.code !== STREAM_NAME_IN_USE) throw error;
  }
  const existing = await manager.streams.info(config.stream);
  logger.warn(
    { stream: config.stream, subjects: existing.config.subjects, maxAge: existing.config.max_age, maxBytes: existing.config.max_bytes },
    'the NATS event stream exists with other settings than the configured ones; kept as it is',
  );
}
