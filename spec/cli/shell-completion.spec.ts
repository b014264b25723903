/** Completion from what QEMU 7.2 reports about itself (query-commands, query-qmp-schema, HMP help). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from '../../lib/index.js';
import { hmpCommandNames, hmpInfoNames, ShellCompleter, type CompletionData, type SchemaEntity } from '../../lib/cli/shell-completion.js';
import { startQemu } from '../helpers/qemu.js';

let data: CompletionData;
let completer: ShellCompleter;
const META = ['/help', '/hmp', '/qmp', '/pretty', '/quit'];

test.before(async () => {
  const qemu = await startQemu();
  try {
    const monitor = await connect(qemu.qmpPath);
    data = {
      qmpCommands: (await monitor.execute<Array<{ name: string }>>('query-commands')).map((command) => command.name),
      schema: await monitor.execute<SchemaEntity[]>('query-qmp-schema'),
      hmpCommands: hmpCommandNames(await monitor.hmp('help')),
      hmpInfo: hmpInfoNames(await monitor.hmp('info')),
    };
    await monitor.close();
  } finally {
    await qemu.stop();
  }
  completer = new ShellCompleter(data, META);
});

test('command names, and shell commands after /', () => {
  assert.equal(completer.complete('query-sta', 'qmp'), [['query-stats', 'query-stats-schemas', 'query-status'], 'query-sta']);
  assert.equal(completer.complete('/h', 'qmp'), [['/help', '/hmp'], '/h']);
  assert.equal(completer.complete('', 'qmp')[0].length, data.qmpCommands.length);
});

test('argument names of a command, without those already given', () => {
  assert.equal(completer.complete('qom-get ', 'qmp'), [['path=', 'property='], '']);
  assert.equal(completer.complete('qom-get path=/machine ', 'qmp'), [['property='], '']);
  assert.equal(completer.complete('human-monitor-command c', 'qmp'), [['command-line=', 'cpu-index='], 'c']);
  assert.equal(completer.complete('no-such-command ', 'qmp'), [[], '']);
});

test('union variants contribute their members; object members complete with a dot and nest', () => {
  const [candidates] = completer.complete('blockdev-add ', 'qmp');
  for (const expected of ['driver=', 'node-name=', 'filename=', 'file=']) assert.ok(candidates.includes(expected), `${expected} in ${candidates.join(' ')}`);
  const synthetic = new ShellCompleter(
    {
      qmpCommands: ['cmd'],
      hmpCommands: [],
      hmpInfo: [],
      schema: [
        { name: 'cmd', 'meta-type': 'command', 'arg-type': 'A' },
        { name: 'A', 'meta-type': 'object', members: [{ name: 'inner', type: 'B' }, { name: 'mode', type: 'E' }] },
        { name: 'B', 'meta-type': 'object', members: [{ name: 'flag', type: 'bool' }, { name: 'size', type: 'int' }] },
        { name: 'E', 'meta-type': 'enum', values: ['fast', 'slow'] },
      ],
    },
    META,
  );
  assert.equal(synthetic.complete('cmd ', 'qmp'), [['inner.', 'mode='], '']);
  assert.equal(synthetic.complete('cmd inner.', 'qmp'), [['inner.flag=', 'inner.size='], 'inner.']);
  assert.equal(synthetic.complete('cmd inner.flag=', 'qmp'), [['inner.flag=false', 'inner.flag=true'], 'inner.flag=']);
  assert.equal(synthetic.complete('cmd mode=f', 'qmp'), [['mode=fast'], 'mode=f']);
  assert.equal(synthetic.complete('cmd inner.size=', 'qmp'), [[], 'inner.size=']);
});

test('the union variant the tag picks, and alternates walked into: blockdev-add driver=qcow2 file.', () => {
  const [qcow2] = completer.complete('blockdev-add driver=qcow2 ', 'qmp');
  for (const expected of ['file.', 'file=', 'backing.', 'backing=', 'lazy-refcounts=', 'node-name=']) assert.ok(qcow2.includes(expected), `${expected} in ${qcow2.join(' ')}`);
  assert.not.ok(qcow2.includes('filename='), 'a member of another variant (file) is not offered');
  const [file] = completer.complete('blockdev-add driver=qcow2 file.', 'qmp');
  for (const expected of ['file.driver=', 'file.node-name=', 'file.filename=']) assert.ok(file.includes(expected), `${expected} in ${file.join(' ')}`);
  const [fileOfFile] = completer.complete('blockdev-add driver=qcow2 file.driver=file file.', 'qmp');
  assert.ok(fileOfFile.includes('file.filename='));
  assert.not.ok(fileOfFile.includes('file.lazy-refcounts='), 'only the file driver\'s members under file.');
  assert.ok(completer.complete('blockdev-add driver=qcow2 file.driver=f', 'qmp')[0].includes('file.driver=file'));
});

test('values from the real schema: booleans and enums; none for free-form types', () => {
  assert.equal(completer.complete('query-named-block-nodes flat=t', 'qmp'), [['flat=true'], 'flat=t']);
  assert.equal(completer.complete('migrate-set-capabilities capabilities=', 'qmp'), [[], 'capabilities=']);
  assert.ok(completer.complete('blockdev-add driver=q', 'qmp')[0].includes('driver=qcow2'));
});

test('nothing is offered inside raw JSON', () => {
  assert.equal(completer.complete('{"execute": "qu', 'qmp'), [[], '"qu']);
  assert.equal(completer.complete('qom-get {"pa', 'qmp'), [[], '{"pa']);
});

test('HMP: command names (aliases too) and info subcommands', () => {
  assert.ok(data.hmpCommands.includes('cont') && data.hmpCommands.includes('c'), 'cont|c both offered');
  assert.ok(data.hmpCommands.includes('info') && data.hmpCommands.includes('quit') && data.hmpCommands.includes('q'));
  assert.not.ok(data.hmpCommands.some((name) => name.startsWith('[') || name === ''), 'no continuation lines');
  assert.equal(completer.complete('info nam', 'hmp'), [['name'], 'nam']);
  assert.equal(completer.complete('device_a', 'hmp'), [['device_add'], 'device_a']);
  assert.equal(completer.complete('device_add us', 'hmp'), [[], 'us']);
});

test.run();
