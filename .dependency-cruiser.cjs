/* global module */
/**
 * The layer rules of lib/ (docs/ARCHITECTURE.md draws them), checked by
 * `npm run depcheck` in CI:
 *
 *   0 base        errors.ts log.ts fifo.ts state.ts request.ts audit-sink.ts call-watch.ts rx.ts lazy-rx.ts connect-options.ts
 *   1 io          transport.ts net/ launch/ fd/
 *   2 formats     qemu-json/ qapi/ schema.ts
 *   3 protocols   session/ qmp/ hmp/ qga/ contract.ts
 *   4 connect     monitor.ts event-wait.ts
 *   5 passthrough passthrough/
 *   6 rpc         rpc/
 *   7 fleet       nats/
 *   8 proxy       proxy/
 *   9 cli         cli/
 *
 * A module imports only from its own layer or lower ones, never in a
 * circle, and the package entries (lib/index.ts, lib/passthrough/index.ts)
 * are for the package's users and the CLI, not for the layers they export.
 * Type-only imports count: a type import upward is still a dependency on
 * the upper layer's shape.
 */

/** Each layer as a path pattern, lowest first. */
const LAYERS = [
  { name: 'base', path: '^lib/(errors|log|fifo|state|request|audit-sink|call-watch|rx|lazy-rx|connect-options)\\.ts$' },
  { name: 'io', path: '^lib/(transport\\.ts$|net/|launch/|fd/)' },
  { name: 'formats', path: '^lib/(qemu-json/|qapi/|schema\\.ts$)' },
  { name: 'protocols', path: '^lib/(session/|qmp/|hmp/|qga/|contract\\.ts$)' },
  { name: 'connect', path: '^lib/(monitor|event-wait)\\.ts$' },
  { name: 'passthrough', path: '^lib/passthrough/' },
  { name: 'rpc', path: '^lib/rpc/' },
  { name: 'fleet', path: '^lib/nats/' },
  { name: 'proxy', path: '^lib/proxy/' },
  { name: 'cli', path: '^lib/cli/' },
];

/** A forbidden rule per layer: nothing in it imports any layer above it. */
const layerRules = LAYERS.slice(0, -1).map((layer, index) => ({
  name: `layer-${layer.name}`,
  comment: `the ${layer.name} layer imports only from itself and the layers below it`,
  severity: 'error',
  from: { path: layer.path },
  to: { path: LAYERS.slice(index + 1).map((upper) => upper.path) },
}));

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'an import cycle in lib/ (type-only imports included)',
      severity: 'error',
      from: { path: '^lib/' },
      to: { circular: true },
    },
    {
      name: 'unlayered-module',
      comment: 'every module of lib/ belongs to a layer: add a new top-level file or folder to LAYERS in .dependency-cruiser.cjs',
      severity: 'error',
      from: {
        path: '^lib/',
        pathNot: [...LAYERS.map((layer) => layer.path), '^lib/index\\.ts$'],
      },
      to: {},
    },
    ...layerRules,
    {
      name: 'package-entry-from-inside',
      comment: 'lib/index.ts is the package entry: only the CLI (a user of the package) imports it',
      severity: 'error',
      from: { path: '^lib/', pathNot: '^lib/cli/' },
      to: { path: '^lib/index\\.ts$' },
    },
    {
      name: 'passthrough-entry-from-passthrough',
      comment: 'lib/passthrough/index.ts re-exports the pass-through modules; they never import it',
      severity: 'error',
      from: { path: '^lib/passthrough/', pathNot: '^lib/passthrough/index\\.ts$' },
      to: { path: '^lib/passthrough/index\\.ts$' },
    },
    {
      name: 'lib-imports-outside',
      comment: 'lib/ is the shipped code: it never imports specs, benchmarks or scripts',
      severity: 'error',
      from: { path: '^lib/' },
      to: { path: '^(spec|bench|scripts)/' },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'an import that resolves to nothing',
      severity: 'error',
      from: { path: '^lib/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js'],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
