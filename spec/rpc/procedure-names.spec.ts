/**
 * The REMOTE procedure → API name table against the numbers Debian's
 * go-libvirt generated from libvirt's remote_protocol.x (every
 * `REMOTE_PROC_X = N` it carries, 1..426): table entry N is procedure X's
 * name in camel case, or `-` for what is no API call (authentication and
 * the server's event messages).
 */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LAST_REMOTE_PROCEDURE, remoteApiName } from '../../lib/rpc/procedure-names.js';

const GO_LIBVIRT_CONSTANTS = '/usr/share/gocode/src/github.com/digitalocean/go-libvirt/internal/constants/remote_protocol.gen.go';

test('every procedure go-libvirt knows has its number and name here', () => {
  const source = readFileSync(GO_LIBVIRT_CONSTANTS, 'utf8');
  const procedures = [...source.matchAll(/libvirt's REMOTE_PROC_([A-Z0-9_]+)\n\s*Proc\w+ = (\d+)/g)].map((match) => ({ name: match[1]!, number: Number(match[2]) }));
  assert.is(procedures.length, 426);
  for (const { name, number } of procedures) {
    const api = remoteApiName(number);
    const camel = `vir${name.split('_').map((word) => word.charAt(0) + word.slice(1).toLowerCase()).join('')}`;
    const noApi = /^AUTH_/.test(name) || /EVENT_(?!.*REGISTER)/.test(name) || /^CONNECT_DOMAIN_EVENT_CALLBACK_/.test(name);
    if (noApi && api === undefined) continue;
    if (/^CONNECT_DOMAIN_EVENT_CALLBACK_(DE)?REGISTER_ANY$/.test(name)) {
      assert.is(api, name.includes('DEREGISTER') ? 'virConnectDomainEventDeregisterAny' : 'virConnectDomainEventRegisterAny');
      continue;
    }
    assert.ok(api !== undefined, `${number} ${name}`);
    assert.is(api.toLowerCase(), camel.toLowerCase(), `${number} ${name}`);
  }
});

test('names are spelt as libvirt exports them; the 9.0 additions end the table', () => {
  assert.is(remoteApiName(14), 'virDomainGetXMLDesc');
  assert.is(remoteApiName(22), 'virDomainLookupByID');
  assert.is(remoteApiName(337), 'virDomainGetTime');
  assert.is(remoteApiName(443), 'virDomainFDAssociate');
  assert.is(remoteApiName(442), 'virDomainAbortJobFlags');
  assert.is(LAST_REMOTE_PROCEDURE, 443);
  assert.is(remoteApiName(66), undefined);
  assert.is(remoteApiName(318), undefined);
  assert.is(remoteApiName(444), undefined);
  assert.is(remoteApiName(0), undefined);
  assert.is(remoteApiName(-1), undefined);
});

test.run();
