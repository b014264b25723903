/** Reading <qemu:commandline> the way libvirt does, refusing what cannot be applied. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LibvirtXmlError, readQemuCommandline } from '../../lib/cli/libvirt-xml.js';

const FIXTURE = join(fileURLToPath(new URL('../../../', import.meta.url)), 'spec/cli/fixtures/domain-lab1.xml');
const NS = `xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'`;

test('the fixture domain (as virsh dumpxml writes it): args in order, env with and without value', () => {
  assert.equal(readQemuCommandline(readFileSync(FIXTURE, 'utf8')), {
    args: ['-name', 'guest=lab1 (qmpx),,test,debug-threads=on', '-object', `secret,id=sec0,data=s3cr3t "quoted" & 'spaced',format=raw`],
    env: { QMPX_FIXTURE: 'a b=c, "d"', QMPX_EMPTY: '' },
  });
});

test('any prefix bound to the namespace works; several blocks are read in order; other namespaces are ignored', () => {
  const xml = `<domain xmlns:x='http://libvirt.org/schemas/domain/qemu/1.0' xmlns:o='urn:other'>
    <x:commandline><x:arg value='-a'/></x:commandline>
    <o:commandline><o:arg value='ignored'/></o:commandline>
    <x:commandline><x:arg value='-b'/><x:env name='_X1' value='v'/></x:commandline>
  </domain>`;
  assert.equal(readQemuCommandline(xml), { args: ['-a', '-b'], env: { _X1: 'v' } });
});

test('a domain without the block gives nothing to apply', () => {
  assert.equal(readQemuCommandline(`<domain type='kvm'><name>x</name></domain>`), { args: [], env: {} });
});

const REFUSED: Array<[string, RegExp]> = [
  [`<domain ${NS}><qemu:commandline><qemu:arg/></qemu:commandline></domain>`, /<qemu:arg> has no value attribute/],
  [`<domain ${NS}><qemu:commandline><qemu:env value='x'/></qemu:commandline></domain>`, /<qemu:env> has no name attribute/],
  [`<domain ${NS}><qemu:commandline><qemu:env name='1BAD'/></qemu:commandline></domain>`, /invalid environment name "1BAD"/],
  [`<domain ${NS}><qemu:commandline><qemu:env name='A-B'/></qemu:commandline></domain>`, /invalid environment name "A-B"/],
  [`<domain ${NS}><qemu:commandline><qemu:args value='x'/></qemu:commandline></domain>`, /unknown element <qemu:args> in <qemu:commandline>/],
  [`<domain ${NS}><qemu:commandline><env name='X'/></qemu:commandline></domain>`, /did you mean <qemu:env>\?/],
  [`<domain ${NS}><qemu:override/></domain>`, /<qemu:override> configures libvirt itself/],
  [`<network ${NS}/>`, /the root element is <network>, expected a libvirt <domain>/],
  [`<domain ${NS}><qemu:commandline></domain>`, /is not well-formed XML: line 1/],
];

for (const [xml, expected] of REFUSED) {
  test(`refuses ${xml.replace(NS, 'xmlns:qemu=…')}`, () => {
    try {
      readQemuCommandline(xml, 'dom.xml');
      assert.unreachable('accepted');
    } catch (error) {
      assert.instance(error, LibvirtXmlError);
      assert.match((error as Error).message, expected);
      assert.match((error as Error).message, /^dom\.xml/);
    }
  });
}

test.run();
