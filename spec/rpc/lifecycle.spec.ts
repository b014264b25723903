/**
 * The state libvirt's QEMU driver gives each `query-status` run state, and
 * the NICs qmpx reads from HMP `info network` (text as QEMU 7.2 prints it).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseInfoNetwork } from '../../lib/rpc/domain-facts.js';
import { DomainState, stateOfRunStatus } from '../../lib/rpc/lifecycle.js';

test('run states map to libvirt states and reasons', () => {
  const cases: Array<[string, boolean, number, number]> = [
    ['running', true, DomainState.RUNNING, 0],
    ['prelaunch', false, DomainState.PAUSED, 1],
    ['paused', false, DomainState.PAUSED, 1],
    ['inmigrate', false, DomainState.PAUSED, 2],
    ['postmigrate', false, DomainState.PAUSED, 2],
    ['finish-migrate', false, DomainState.PAUSED, 2],
    ['save-vm', false, DomainState.PAUSED, 3],
    ['io-error', false, DomainState.PAUSED, 5],
    ['watchdog', false, DomainState.PAUSED, 6],
    ['debug', false, DomainState.PAUSED, 0],
    ['internal-error', false, DomainState.PAUSED, 0],
    ['restore-vm', false, DomainState.PAUSED, 0],
    ['colo', false, DomainState.PAUSED, 0],
    ['shutdown', false, DomainState.SHUTDOWN, 0],
    ['guest-panicked', false, DomainState.CRASHED, 1],
    ['suspended', false, DomainState.PMSUSPENDED, 0],
  ];
  for (const [status, running, state, reason] of cases) assert.equal(stateOfRunStatus(status, running), { state, reason }, status);
});

test('info network: each NIC with its model, MAC and backend', () => {
  const text =
    'nic0: index=0,type=nic,model=e1000,macaddr=52:54:00:12:34:56\r\n' +
    ' \\ n0: index=0,type=user,net=10.0.2.0,restrict=off\r\n' +
    'virtio-net-pci.0: index=0,type=nic,model=virtio-net-pci,macaddr=52:54:00:12:34:57\r\n' +
    ' \\ t0: index=0,type=tap,ifname=tap0,script=no,downscript=no\r\n' +
    'hub 0\r\n' +
    'n9: index=0,type=user,net=10.0.2.0,restrict=off\r\n';
  assert.equal(parseInfoNetwork(text), [
    { name: 'nic0', model: 'e1000', mac: '52:54:00:12:34:56', backend: 'user', ifname: undefined },
    { name: 'virtio-net-pci.0', model: 'virtio-net-pci', mac: '52:54:00:12:34:57', backend: 'tap', ifname: 'tap0' },
  ]);
  assert.equal(parseInfoNetwork(''), []);
});

test.run();
