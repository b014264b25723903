/**
 * The domains an endpoint serves and how the lookups find them, with
 * libvirt's NO_DOMAIN errors worded as libvirt 9.0's QEMU driver words them
 * (virsh prints them after `failed to get domain 'NAME'`; libvirt-python
 * raises code 42, e.g. `Domain not found: no domain with matching name 'x'`).
 *
 * The list is re-read on every lookup: a proxy whose upstream reconnects
 * hands out its current Monitor, and the next call uses it.
 */
import type { Monitor } from '../contract.js';
import { RpcError } from './rpc-error.js';
import { UUID_BYTES, type Domain } from './messages.js';
import { ErrorCode, ErrorDomain } from './protocol.js';
import type { CallWatch } from '../call-watch.js';

/** One domain as the endpoint's owner describes it. */
export interface LibvirtDomain {
  /** What virsh and lookupByName use: `serve --name` or the config's name. */
  name: string;
  /** The 36-character text form, e.g. from QEMU's `query-uuid` or the config. */
  uuid: string;
  /** The running domain's id (1..N); virsh accepts it in place of the name. */
  id: number;
  /** The monitor that QEMU procs 1 and 4..7 reach. */
  monitor: Monitor;
  /** A guest-agent socket for QEMU proc 3; without it proc 3 fails with code 74. */
  agentPath?: string;
  /** Told of each monitor command sent for a client (the command watchdog). */
  watch?: CallWatch;
}

const UUID_TEXT = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** The 16 raw bytes of a uuid's text form (dashes optional, as libvirt's virUUIDParse). Throws Error on bad text. */
export function uuidBytes(text: string): Buffer {
  if (!UUID_TEXT.test(text)) throw new Error(`not a uuid: ${JSON.stringify(text)}`);
  const bytes = Buffer.from(text.replace(/-/g, ''), 'hex');
  if (bytes.length !== UUID_BYTES) throw new Error(`not a uuid: ${JSON.stringify(text)}`);
  return bytes;
}

/** The canonical 36-character text of 16 uuid bytes. */
export function uuidText(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The wire form (remote_nonnull_domain) of a served domain. */
export function wireDomain(domain: LibvirtDomain): Domain {
  return { name: domain.name, uuid: uuidBytes(domain.uuid), id: domain.id };
}

function noDomain(detail: string): RpcError {
  return RpcError.report(ErrorCode.NO_DOMAIN, ErrorDomain.QEMU, detail);
}

/** A served domain whose monitor is gone (its QEMU stopped, its upstream is reconnecting): libvirt's shut-off domain. */
export interface InactiveDomain {
  name: string;
  uuid: string;
  /** The id it has while running (on the wire it is -1 while shut off). */
  id: number;
}

/** A domain found by a call: running (with its monitor) or shut off. */
export type FoundDomain = { active: LibvirtDomain; inactive?: undefined } | { active?: undefined; inactive: InactiveDomain };

/** The wire form of a shut-off domain: id -1, as libvirt sends it. */
export function wireInactive(domain: InactiveDomain): Domain {
  return { name: domain.name, uuid: uuidBytes(domain.uuid), id: -1 };
}

/** Finds served domains by what the REMOTE lookups and the QEMU procs carry. */
export class DomainRegistry {
  constructor(
    private readonly list: () => readonly LibvirtDomain[],
    private readonly inactiveList: () => readonly InactiveDomain[] = () => [],
  ) {}

  /** Every running domain served right now. */
  all(): readonly LibvirtDomain[] {
    return this.list();
  }

  /** Every shut-off domain served right now. */
  inactive(): readonly InactiveDomain[] {
    return this.inactiveList();
  }

  /** The wire form of the domain named `name`, running or shut off; throws RpcError NO_DOMAIN. */
  lookUpName(name: string): Domain {
    const active = this.list().find((domain) => domain.name === name);
    if (active) return wireDomain(active);
    const inactive = this.inactiveList().find((domain) => domain.name === name);
    if (inactive) return wireInactive(inactive);
    throw noDomain(`no domain with matching name '${name}'`);
  }

  /** The wire form of the domain with `uuid`, running or shut off; throws RpcError NO_DOMAIN. */
  lookUpUuid(uuid: Buffer): Domain {
    const active = this.list().find((domain) => uuidBytes(domain.uuid).equals(uuid));
    if (active) return wireDomain(active);
    const inactive = this.inactiveList().find((domain) => uuidBytes(domain.uuid).equals(uuid));
    if (inactive) return wireInactive(inactive);
    throw noDomain(`no domain with matching uuid '${uuidText(uuid)}'`);
  }

  /** The domain a call names, running or shut off; throws RpcError NO_DOMAIN as resolve() does. */
  find(dom: Domain): FoundDomain {
    const active = this.list().find((domain) => uuidBytes(domain.uuid).equals(dom.uuid));
    if (active) return { active };
    const inactive = this.inactiveList().find((domain) => uuidBytes(domain.uuid).equals(dom.uuid));
    if (inactive) return { inactive };
    throw noDomain(`no domain with matching uuid '${uuidText(dom.uuid)}' (${dom.name})`);
  }

  /** DOMAIN_LOOKUP_BY_NAME; throws RpcError NO_DOMAIN `no domain with matching name 'N'`. */
  byName(name: string): LibvirtDomain {
    const found = this.list().find((domain) => domain.name === name);
    if (!found) throw noDomain(`no domain with matching name '${name}'`);
    return found;
  }

  /** DOMAIN_LOOKUP_BY_ID; throws RpcError NO_DOMAIN `no domain with matching id N`. */
  byId(id: number): LibvirtDomain {
    const found = this.list().find((domain) => domain.id === id);
    if (!found) throw noDomain(`no domain with matching id ${id}`);
    return found;
  }

  /** DOMAIN_LOOKUP_BY_UUID; throws RpcError NO_DOMAIN `no domain with matching uuid 'U'`. */
  byUuid(uuid: Buffer): LibvirtDomain {
    const found = this.list().find((domain) => uuidBytes(domain.uuid).equals(uuid));
    if (!found) throw noDomain(`no domain with matching uuid '${uuidText(uuid)}'`);
    return found;
  }

  /**
   * The running domain a call names (libvirt resolves it by uuid, qemuDomainObjFromDomain);
   * throws RpcError NO_DOMAIN `no domain with matching uuid 'U' (NAME)`, or
   * OPERATION_INVALID `domain is not running` for a shut-off one (virDomainObjCheckActive).
   */
  resolve(dom: Domain): LibvirtDomain {
    const found = this.find(dom);
    if (found.active === undefined) throw RpcError.report(ErrorCode.OPERATION_INVALID, ErrorDomain.QEMU, 'domain is not running');
    return found.active;
  }
}
