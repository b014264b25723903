/**
 * The domain XML of DOMAIN_GET_XML_DESC (`virsh dumpxml`, and what `virsh
 * domblklist` / `domiflist` read): only what QEMU's monitor can vouch for.
 *
 * In it: `<domain type>` (kvm when `query-kvm` says enabled, else qemu),
 * `id` (running only), name, uuid, memory and currentMemory (KiB), vcpu
 * count, `<os><type arch machine>hvm</type></os>`, and under `<devices>`
 * one `<disk>` per block backend (source file, target = the backend's
 * name, `device='cdrom'` for removable media, `<readonly/>`) and one
 * `<interface>` per NIC (`user` or `ethernet` by its backend, MAC, model,
 * a tap's host device as target).
 *
 * Not in it (QEMU does not know them, or qmpx does not reconstruct them):
 * the emulator path, features, CPU model, clock, on_* actions, controllers,
 * buses and guest-side disk names (`vda`), addresses, graphics, serial
 * consoles, aliases, seclabels, and libvirt's metadata. An inactive domain
 * gets name and uuid only.
 */
import type { Monitor } from '../monitor.js';
import { diskFacts, domainFacts, interfaceFacts, machineFacts } from './domain-facts.js';

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');
}

/** XML of an inactive domain: what qmpx knows without a monitor. */
export function inactiveDomainXml(name: string, uuid: string): string {
  return `<domain type='qemu'>\n  <name>${escapeXml(name)}</name>\n  <uuid>${uuid}</uuid>\n</domain>\n`;
}

/** XML of a running domain from its monitor's answers. */
export async function activeDomainXml(monitor: Monitor, identity: { name: string; uuid: string; id: number }): Promise<string> {
  const [facts, machine, disks, nics] = await Promise.all([domainFacts(monitor), machineFacts(monitor), diskFacts(monitor), interfaceFacts(monitor)]);
  const lines = [
    `<domain type='${machine.kvm ? 'kvm' : 'qemu'}' id='${identity.id}'>`,
    `  <name>${escapeXml(identity.name)}</name>`,
    `  <uuid>${identity.uuid}</uuid>`,
    `  <memory unit='KiB'>${facts.maxMemKiB}</memory>`,
    `  <currentMemory unit='KiB'>${facts.memoryKiB}</currentMemory>`,
    `  <vcpu placement='static'>${facts.vcpus}</vcpu>`,
    '  <os>',
    `    <type${machine.arch ? ` arch='${escapeXml(machine.arch)}'` : ''}${machine.machine ? ` machine='${escapeXml(machine.machine)}'` : ''}>hvm</type>`,
    '  </os>',
    '  <devices>',
  ];
  for (const disk of disks) {
    lines.push(`    <disk type='file' device='${disk.removable ? 'cdrom' : 'disk'}'>`);
    if (disk.format !== undefined) lines.push(`      <driver name='qemu' type='${escapeXml(disk.format)}'/>`);
    if (disk.source !== undefined) lines.push(`      <source file='${escapeXml(disk.source)}'/>`);
    lines.push(`      <target dev='${escapeXml(disk.target)}'/>`);
    if (disk.readOnly) lines.push('      <readonly/>');
    lines.push('    </disk>');
  }
  for (const nic of nics) {
    lines.push(`    <interface type='${nic.backend === 'user' ? 'user' : 'ethernet'}'>`);
    if (nic.mac !== '') lines.push(`      <mac address='${escapeXml(nic.mac)}'/>`);
    if (nic.ifname !== undefined) lines.push(`      <target dev='${escapeXml(nic.ifname)}'/>`);
    if (nic.model !== '') lines.push(`      <model type='${escapeXml(nic.model)}'/>`);
    lines.push('    </interface>');
  }
  lines.push('  </devices>', '</domain>', '');
  return lines.join('\n');
}
