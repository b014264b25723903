/**
 * A strict check of Prometheus' text exposition format (version 0.0.4),
 * for specs: every line a HELP, a TYPE, a sample or empty; names and label names
 * well-formed; label values quoted with only \\, \" and \n escapes; each
 * sample under the TYPE of its family, declared once and before it;
 * histograms with cumulative buckets ending in +Inf equal to _count.
 * Returns the samples by their text key (`name{a="x",b="y"}` with labels
 * sorted) so specs can read values back.
 */
const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
// Prometheus reads values with Go's strconv.ParseFloat, which takes NaN and Inf in any case (prom-client prints "Nan").
const VALUE = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?inf(?:inity)?|nan)$/i;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export class ExpositionError extends Error {
  override readonly name = 'ExpositionError';
}

function parseLabels(text: string, line: number): Record<string, string> {
  const labels: Record<string, string> = {};
  let rest = text;
  while (rest !== '') {
    const match = /^([^=]+)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/.exec(rest);
    if (match === null) throw new ExpositionError(`line ${line}: malformed labels {${text}}`);
    const [whole, name, value] = match as unknown as [string, string, string];
    if (!LABEL_NAME.test(name) || name.startsWith('__')) throw new ExpositionError(`line ${line}: bad label name ${name}`);
    if (name in labels) throw new ExpositionError(`line ${line}: label ${name} twice`);
    labels[name] = value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    rest = rest.slice(whole.length);
  }
  return labels;
}

export function sampleKey(name: string, labels: Record<string, string>): string {
  const parts = Object.keys(labels).sort().map((key) => `${key}=${JSON.stringify(labels[key])}`);
  return parts.length === 0 ? name : `${name}{${parts.join(',')}}`;
}

/** Checks `text`; throws ExpositionError naming the first problem. */
export function checkExposition(text: string): Map<string, Sample> {
  if (!text.endsWith('\n')) throw new ExpositionError('the text does not end with a newline');
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const samples = new Map<string, Sample>();
  let current: string | undefined;
  const lines = text.slice(0, -1).split('\n');
  lines.forEach((line, index) => {
    const number = index + 1;
    // The format lets empty lines separate families.
    if (line === '') return;
    if (line.startsWith('#')) {
      const match = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
      if (match === null) throw new ExpositionError(`line ${number}: a comment that is neither HELP nor TYPE: ${line}`);
      const [, kind, name, rest] = match as unknown as [string, string, string, string];
      if (!NAME.test(name)) throw new ExpositionError(`line ${number}: bad metric name ${name}`);
      if (kind === 'TYPE') {
        if (!TYPES.has(rest)) throw new ExpositionError(`line ${number}: unknown type ${rest}`);
        if (types.has(name)) throw new ExpositionError(`line ${number}: TYPE of ${name} twice`);
        types.set(name, rest);
        current = name;
      } else {
        if (helps.has(name)) throw new ExpositionError(`line ${number}: HELP of ${name} twice`);
        helps.add(name);
      }
      return;
    }
    const match = /^([^{\s]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) throw new ExpositionError(`line ${number}: not a sample: ${line}`);
    const [, name, labelText, valueText] = match as unknown as [string, string, string | undefined, string];
    if (!NAME.test(name)) throw new ExpositionError(`line ${number}: bad metric name ${name}`);
    if (!VALUE.test(valueText)) throw new ExpositionError(`line ${number}: bad value ${valueText}`);
    const family = current;
    const type = family === undefined ? undefined : types.get(family);
    const suffixes = type === 'histogram' ? ['_bucket', '_sum', '_count'] : type === 'summary' ? ['', '_sum', '_count'] : [''];
    if (family === undefined || !suffixes.some((suffix) => name === `${family}${suffix}`)) {
      throw new ExpositionError(`line ${number}: sample ${name} outside its family's TYPE (current: ${family ?? 'none'})`);
    }
    const labels = parseLabels(labelText ?? '', number);
    if (name.endsWith('_bucket') && type === 'histogram' && labels.le === undefined) throw new ExpositionError(`line ${number}: bucket without le`);
    const lower = valueText.toLowerCase();
    const value = lower === 'nan' ? NaN : /inf/.test(lower) ? (lower.startsWith('-') ? -Infinity : Infinity) : Number(valueText);
    const key = sampleKey(name, labels);
    if (samples.has(key)) throw new ExpositionError(`line ${number}: sample ${key} twice`);
    samples.set(key, { name, labels, value });
  });
  checkHistograms(types, samples);
  return samples;
}

function checkHistograms(types: Map<string, string>, samples: Map<string, Sample>): void {
  for (const [family, type] of types) {
    if (type !== 'histogram') continue;
    const series = new Map<string, Sample[]>();
    for (const sample of samples.values()) {
      if (sample.name !== `${family}_bucket`) continue;
      const { le: _le, ...rest } = sample.labels;
      const key = sampleKey(family, rest);
      series.set(key, [...(series.get(key) ?? []), sample]);
    }
    for (const [key, buckets] of series) {
      buckets.sort((a, b) => Number(a.labels.le === '+Inf' ? Infinity : a.labels.le) - Number(b.labels.le === '+Inf' ? Infinity : b.labels.le));
      for (let i = 1; i < buckets.length; i++) {
        if (buckets[i]!.value < buckets[i - 1]!.value) throw new ExpositionError(`${key}: buckets not cumulative at le=${buckets[i]!.labels.le}`);
      }
      const last = buckets[buckets.length - 1]!;
      if (last.labels.le !== '+Inf') throw new ExpositionError(`${key}: no +Inf bucket`);
      const count = samples.get(key.replace(family, `${family}_count`));
      if (count === undefined || count.value !== last.value) throw new ExpositionError(`${key}: +Inf bucket ${last.value} differs from _count ${count?.value}`);
    }
  }
}
