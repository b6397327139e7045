/**
 * The parts of libvirt's domain XML that memfabric reads (readers/libvirt.ts):
 * for completion in domain XML. Not all of libvirt's schema, only the
 * elements whose memory meaning the engine understands, with the attribute
 * values libvirt 9.0 accepts.
 */

export interface LibvirtAttr {
  /** Values libvirt accepts (undefined: free text). */
  values?: string[];
  doc?: string;
}

export interface LibvirtElement {
  children: string[];
  attrs: Record<string, LibvirtAttr>;
  doc: string;
}

const UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'b', 'bytes', 'k', 'KB', 'M', 'MB', 'G', 'GB', 'T', 'TB'];
const unit: LibvirtAttr = { values: UNITS, doc: 'Scale of the value: KiB when absent (bytes for <shmem><size>)' };
const YESNO = ['yes', 'no'];

/** Keyed by element name; `parent>name` where the same name means different things under different parents. */
export const LIBVIRT_SCHEMA: Record<string, LibvirtElement> = {
  domain: {
    children: ['name', 'memory', 'currentMemory', 'maxMemory', 'vcpu', 'os', 'cpu', 'devices', 'qemu:commandline'],
    attrs: { type: { values: ['kvm', 'qemu'] }, 'xmlns:qemu': { values: ['http://libvirt.org/schemas/domain/qemu/1.0'], doc: 'Needed for <qemu:commandline>' } },
    doc: 'A libvirt domain: one QEMU guest',
  },
  name: { children: [], attrs: {}, doc: 'The domain name (QEMU -name)' },
  memory: { children: [], attrs: { unit }, doc: 'Maximum guest RAM at boot (-m); with NUMA cells libvirt uses their sum' },
  currentMemory: { children: [], attrs: { unit }, doc: 'Current allocation (balloon); not the RAM size' },
  maxMemory: { children: [], attrs: { unit, slots: { doc: 'Memory device slots (-m slots=)' } }, doc: 'Hotplug limit (-m maxmem=, slots=): needed for <memory> devices' },
  vcpu: { children: [], attrs: { placement: { values: ['static', 'auto'] } }, doc: 'Virtual CPUs (-smp)' },
  os: { children: ['type', 'kernel', 'initrd', 'cmdline'], attrs: {}, doc: 'Machine type and boot' },
  type: { children: [], attrs: { arch: { values: ['x86_64', 'aarch64'] }, machine: { values: ['q35', 'pc', 'pc-q35-7.2', 'pc-i440fx-7.2', 'virt'], doc: 'q35 for PCIe and CXL' } }, doc: 'hvm' },
  kernel: { children: [], attrs: {}, doc: 'Direct kernel boot (-kernel)' },
  initrd: { children: [], attrs: {}, doc: '-initrd' },
  cmdline: { children: [], attrs: {}, doc: 'Kernel command line (-append)' },
  cpu: { children: ['numa'], attrs: { mode: { values: ['host-passthrough', 'host-model', 'custom'] } }, doc: 'CPU model and NUMA topology' },
  numa: { children: ['cell'], attrs: {}, doc: 'Guest NUMA nodes' },
  cell: {
    children: [],
    attrs: {
      id: {},
      cpus: { doc: 'CPU list, e.g. 0-3' },
      memory: { doc: 'The cell size (scaled by unit=, KiB by default)' },
      unit,
      memAccess: { values: ['shared', 'private'], doc: 'shared: a file-backed, shareable backend' },
      discard: { values: YESNO },
    },
    doc: 'A NUMA node: a memory-backend-ram (or file) and -numa node',
  },
  devices: { children: ['shmem', 'memory', 'hostdev', 'acpiEgmMemory'], attrs: {}, doc: 'Devices' },
  shmem: { children: ['model', 'size', 'server', 'alias'], attrs: { name: { doc: '/dev/shm/NAME: the region every domain with this name shares' } }, doc: 'Inter-VM shared memory (ivshmem-plain + memory-backend-file share=on)' },
  model: { children: [], attrs: { type: { values: ['ivshmem-plain', 'ivshmem-doorbell'], doc: 'ivshmem-plain: memory only; ivshmem-doorbell: with an ivshmem server' } }, doc: 'The shmem device model' },
  size: { children: [], attrs: { unit }, doc: 'Region size: a power of two (BAR2)' },
  server: { children: [], attrs: { path: {} }, doc: 'The ivshmem server socket (ivshmem-doorbell only)' },
  alias: { children: [], attrs: { name: { doc: "The device id (libvirt wants a 'ua-' prefix for user aliases)" } }, doc: 'Device id' },
  'devices>memory': {
    children: ['source', 'target', 'alias'],
    attrs: { model: { values: ['dimm', 'nvdimm'], doc: 'pc-dimm or nvdimm' }, access: { values: ['shared', 'private'] }, discard: { values: YESNO } },
    doc: 'A memory device (pc-dimm, nvdimm): needs <maxMemory slots=…>',
  },
  source: { children: ['path', 'address'], attrs: {}, doc: 'Backing file (memory) or host address (hostdev)' },
  path: { children: [], attrs: {}, doc: 'Host path (nvdimm backing file)' },
  target: { children: ['size', 'node', 'label'], attrs: {}, doc: 'Size and NUMA node of the memory device' },
  node: { children: [], attrs: {}, doc: 'Guest NUMA node' },
  label: { children: ['size'], attrs: {}, doc: 'nvdimm label area' },
  hostdev: { children: ['source', 'alias'], attrs: { mode: { values: ['subsystem'] }, type: { values: ['pci'] }, managed: { values: YESNO } }, doc: 'A host PCI device (vfio-pci)' },
  address: { children: [], attrs: { domain: {}, bus: {}, slot: {}, function: {} }, doc: 'Host PCI address' },
  acpiEgmMemory: { children: ['alias', 'pciDev', 'numaNode'], attrs: {}, doc: 'NVIDIA Grace EGM (libvirt RFC, no release)' },
  pciDev: { children: [], attrs: {}, doc: 'The GPU hostdev alias' },
  numaNode: { children: [], attrs: {}, doc: 'Guest NUMA node of the EGM memory' },
  'qemu:commandline': { children: ['qemu:arg'], attrs: {}, doc: 'Raw QEMU arguments (xmlns:qemu on <domain>)' },
  'qemu:arg': { children: [], attrs: { value: {} }, doc: 'One QEMU argument' },
};

/** The spec of an element (by its parent when the name is ambiguous). */
export function libvirtElement(name: string, parent?: string): LibvirtElement | undefined {
  return (parent ? LIBVIRT_SCHEMA[`${parent}>${name}`] : undefined) ?? LIBVIRT_SCHEMA[name];
}

/** The children an element may hold, whichever parent it has (a <memory> with children is a memory device). */
export function libvirtChildren(name: string): string[] {
  const out = new Set(LIBVIRT_SCHEMA[name]?.children ?? []);
  for (const [k, v] of Object.entries(LIBVIRT_SCHEMA)) if (k.endsWith(`>${name}`)) for (const c of v.children) out.add(c);
  return [...out];
}
