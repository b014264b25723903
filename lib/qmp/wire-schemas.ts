/**
 * The shapes QEMU's QMP server and the guest agent send (docs/monitor-facts.md
 * §2, §4), as JSON schemas. Members QEMU may add later are allowed through:
 * the QMP specification tells clients to ignore what they do not know.
 *
 * Every connection reads these, so they are not compiled at run time:
 * scripts/compile-schemas.mjs turns them into lib/qmp/wire-validators.ts
 * (run it after changing a schema here; a spec checks the two agree).
 */
export const WIRE_SCHEMAS = {
  greeting: {
    type: 'object',
    required: ['QMP'],
    properties: {
      QMP: {
        type: 'object',
        required: ['version', 'capabilities'],
        properties: {
          version: {
            type: 'object',
            required: ['qemu', 'package'],
            properties: {
              qemu: {
                type: 'object',
                required: ['major', 'minor', 'micro'],
                properties: { major: { type: 'integer' }, minor: { type: 'integer' }, micro: { type: 'integer' } },
              },
              package: { type: 'string' },
            },
          },
          capabilities: { type: 'array', items: { type: 'string' } },
        },
      },
    },
  },
  event: {
    type: 'object',
    required: ['event', 'timestamp'],
    properties: {
      event: { type: 'string' },
      data: { type: 'object' },
      timestamp: {
        type: 'object',
        required: ['seconds', 'microseconds'],
        properties: { seconds: { type: 'integer' }, microseconds: { type: 'integer' } },
      },
    },
  },
  reply: {
    type: 'object',
    required: ['return'],
    properties: { return: {} },
  },
  errorReply: {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['class', 'desc'],
        properties: { class: { type: 'string' }, desc: { type: 'string' } },
      },
    },
  },
} as const;
