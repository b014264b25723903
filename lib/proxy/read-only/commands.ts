/**
 * The commands a read-only socket forwards, each with the reason it is
 * harmless, and the query commands it refuses, each with the reason it is
 * not. Reviewed against what every command does in QEMU 7.2 (its QAPI
 * documentation and the code that runs), not against its name: a command
 * missing from `READ_ONLY_COMMANDS` is refused, so a query command a later
 * QEMU adds stays refused until someone reviews it and adds it here.
 * docs/read-only-policy.md is the same list for operators.
 */

/** Allowed commands → why each only reports state and reveals no secret. */
export const READ_ONLY_COMMANDS: ReadonlyMap<string, string> = new Map([
  ['qmp_capabilities', 'negotiation, answered by qmpx per connection; never reaches QEMU'],
  ['qom-list', 'names and types of the properties at a path; no values'],
  ['qom-list-types', 'names of the types compiled in; instantiates nothing'],
  ['qom-get', "one property value, through the property's getter; properties that hold or lead to secret material are refused (see secrets.ts)"],
  ['query-acpi-ospm-status', "reads the guest's last ACPI _OST reports"],
  ['query-balloon', "reads the balloon's current size"],
  ['query-block', 'block devices, their nodes and image file names (names, no keys)'],
  ['query-block-exports', 'block export list'],
  ['query-block-jobs', 'block job progress'],
  ['query-blockstats', 'I/O counters'],
  ['query-chardev', 'character devices and their backend addresses'],
  ['query-chardev-backends', 'backend names compiled in'],
  ['query-colo-status', 'COLO state'],
  ['query-command-line-options', 'static option descriptions'],
  ['query-commands', 'static command list'],
  ['query-cpu-definitions', 'CPU models; each is instantiated from its built-in definition with no client input, a fixed set the type scan shows harmless'],
  ['query-cpus-fast', 'vCPU ids and threads, without interrupting the vCPUs'],
  ['query-current-machine', 'machine state flags'],
  ['query-dirty-rate', 'result of the last calc-dirty-rate; starts nothing'],
  ['query-display-options', 'display configuration'],
  ['query-dump', 'progress of a running dump-guest-memory'],
  ['query-dump-guest-memory-capability', 'static list of dump formats'],
  ['query-fdsets', 'fd numbers and opaque labels of add-fd; no file contents'],
  ['query-hotpluggable-cpus', 'CPU slots'],
  ['query-iothreads', 'I/O thread ids and polling settings'],
  ['query-jobs', 'job states'],
  ['query-kvm', 'whether KVM is present and enabled'],
  ['query-machines', 'static machine type list'],
  ['query-memdev', 'memory backend sizes and policies (no file paths)'],
  ['query-memory-devices', 'DIMM and similar devices'],
  ['query-memory-size-summary', 'RAM sizes'],
  ['query-mice', 'mouse list'],
  ['query-migrate', 'migration status and counters'],
  ['query-migrate-capabilities', 'migration capability flags'],
  ['query-migrate-parameters', 'migration parameters; TLS is named by the id of its credentials object, no key material'],
  ['query-name', 'the VM name'],
  ['query-named-block-nodes', 'block nodes (names, no keys)'],
  ['query-pci', "PCI config as QEMU holds it; no device access"],
  ['query-pr-managers', 'persistent-reservation helper connection state'],
  ['query-qmp-schema', 'static schema'],
  ['query-replay', 'record/replay position'],
  ['query-rocker', 'rocker switch info'],
  ['query-rocker-of-dpa-flows', 'rocker flow table'],
  ['query-rocker-of-dpa-groups', 'rocker group table'],
  ['query-rocker-ports', 'rocker ports'],
  ['query-sev', 'SEV state held by QEMU'],
  ['query-sev-launch-measure', 'the launch measurement QEMU kept (a digest, not a key)'],
  ['query-sgx', 'SGX configuration'],
  ['query-sgx-capabilities', "host SGX capabilities from CPUID"],
  ['query-spice', 'SPICE server and clients; no password'],
  ['query-stats', "KVM statistics counters, read from KVM's stats descriptors (a vCPU's on that vCPU's thread)"],
  ['query-stats-schemas', 'descriptions of those counters'],
  ['query-status', 'run state'],
  ['query-target', 'target architecture'],
  ['query-tpm', 'TPM backends and their device paths'],
  ['query-tpm-models', 'static list'],
  ['query-tpm-types', 'static list'],
  ['query-uuid', 'the VM UUID'],
  ['query-vcpu-dirty-limit', 'dirty-limit settings'],
  ['query-version', 'QEMU version'],
  ['query-vm-generation-id', 'the VM generation id'],
  ['query-vnc', 'VNC server and clients; no password'],
  ['query-vnc-servers', 'VNC servers and clients; no password'],
  ['query-xen-replication-status', 'replication state'],
  ['query-yank', 'yank instances'],
  ['x-query-irq', 'interrupt counters'],
  ['x-query-numa', 'NUMA node sizes and CPUs'],
  ['x-query-ramblock', 'RAM block names, offsets and sizes (no host addresses)'],
  ['x-query-rdma', 'RDMA device counters'],
  ['x-query-roms', 'ROM names and guest addresses'],
  ['x-query-usb', 'USB device list'],
  ['x-query-virtio', 'virtio device paths'],
  ['x-query-virtio-status', "a virtio device's feature and status bits"],
]);

/**
 * Query commands of QEMU 7.2 that the read-only socket refuses, and why;
 * named here so that nobody adds them by their name alone.
 */
export const REFUSED_QUERY_COMMANDS: ReadonlyMap<string, string> = new Map([
  ['query-cpu-model-expansion', 'instantiates a CPU object with properties the client chooses'],
  ['query-rx-filter', "re-arms the NIC's NIC_RX_FILTER_CHANGED event, whose rhythm belongs to the managing client"],
  ['query-sev-attestation-report', "runs a firmware command on the guest's SEV context with the client's nonce"],
  ['query-sev-capabilities', 'runs a platform firmware command (certificate export) on every call'],
  ['x-query-jit', 'walks the whole translation cache under its lock: a cost the client chooses how often to pay'],
  ['x-query-opcount', 'profiler builds only; a debugging dump'],
  ['x-query-profile', 'profiler builds only; resets the counters it reports'],
  ['x-query-virtio-queue-status', 'on a device served by vhost it asks the backend for the ring position (GET_VRING_BASE), which for vhost-user stops the ring'],
  ['x-query-virtio-queue-element', "reads a descriptor chain out of the guest's memory"],
  ['x-query-virtio-vhost-queue-status', "reports the vhost rings' addresses in QEMU's own address space"],
]);

/** Commands that instantiate the type they are given; refused on a read-only socket (see docs/read-only-policy.md). */
export const TYPE_INSTANTIATING_COMMANDS: ReadonlyMap<string, string> = new Map([
  ['qom-list-properties', 'instantiates any non-abstract type it is given; six types of QEMU 7.2 abort QEMU'],
  ['device-list-properties', 'instantiates the device type it is given; two types of QEMU 7.2 abort QEMU'],
]);
