import { Rule } from './rule';
import { NodeModel, QDevice, prop, qemuBool } from '../model/model';
import { qemuSizeString } from '../text/sizes';
import { Fix } from '../diagnostics';
import { devProp, deviceLabel, hexHuman, qemuName, ramSize, sizeOf } from './util';
import { qemuAtLeast } from '../qemu/profile';

/** Devices that plug into the machine's device-memory (hotplug) region. */
export const MEMORY_DEVICES = new Set(['pc-dimm', 'nvdimm', 'virtio-mem-pci']);
/** Memory devices that also take one of the -m slots. */
export const DIMM_DEVICES = new Set(['pc-dimm', 'nvdimm']);

export function memoryDevices(node: NodeModel): QDevice[] {
  return node.devices.filter((d) => MEMORY_DEVICES.has(d.driver));
}

/** Size of the device-memory region's usable space (maxmem − RAM), or undefined when QEMU creates none. */
export function hotplugSpace(node: NodeModel): bigint | undefined {
  const max = sizeOf(node.memory.maxmem);
  if (max === undefined) return undefined;
  const ram = ramSize(node);
  return max > ram ? max - ram : undefined;
}

/** The size of the memory region a memory device maps: its memdev backend's size. */
export function memoryDeviceSize(node: NodeModel, d: QDevice): bigint | undefined {
  const p = devProp(d, 'memdev');
  return sizeOf(p && node.backends.get(p.value.text)?.size);
}

/** The machine's nvdimm=on. */
export function nvdimmOn(node: NodeModel): boolean {
  const p = prop(node.machine.props, 'nvdimm');
  return p !== undefined && (p.bare || qemuBool(p.value.text) === true);
}

const NO_SLOTS = "no slots where allocated, please specify the 'slots' option";
const NOT_ENABLED = 'memory devices (e.g. for memory hotplug) are not enabled, please specify the maxmem option';
/**
 * hw/mem/memory-device.c: QEMU 7.2 memory_device_get_free_addr() says
 * NOT_ENABLED; 10.0 memory_device_pre_plug() says NOT_PREPARED. The release
 * of the change is not pinned (VERSIONS.md): versions from 8.0 get 10.0's words.
 */
const NOT_PREPARED = 'the configuration is not prepared for memory devices (e.g., for memory hotplug), consider specifying the maxmem option';

export const rule: Rule = {
  code: 'memory-device-needs-maxmem',
  severity: 'error',
  summary:
    'pc-dimm, nvdimm and virtio-mem-pci plug into the device-memory (hotplug) region, which QEMU creates only when -m maxmem= is above the RAM size; pc-dimm and nvdimm also need -m slots=. Without maxmem QEMU refuses the device.',
  enforcedBy: `${NOT_ENABLED} (QEMU 7.2) / ${NOT_PREPARED} (10.0) / ${NO_SLOTS}`,
  check({ node, qemu, report }) {
    const notEnabled = qemuAtLeast(qemu, '8.0') ? NOT_PREPARED : NOT_ENABLED;
    if (hotplugSpace(node) !== undefined) return;
    const devs = memoryDevices(node);
    if (!devs.length) return;
    const ram = ramSize(node);
    const max = sizeOf(node.memory.maxmem);
    // maxmem below RAM is maxmem-below-ram's finding.
    if (max !== undefined && max < ram) return;
    const sizes = devs.map((d) => memoryDeviceSize(node, d));
    const total = sizes.every((s) => s !== undefined) ? sizes.reduce((a, b) => a! + b!, 0n)! : undefined;
    const dimms = devs.filter((d) => DIMM_DEVICES.has(d.driver)).length;
    const fixes: Fix[] = [];
    if (total !== undefined && total > 0n) {
      const want = qemuSizeString(ram + total);
      if (node.memory.maxmem) {
        fixes.push({ title: `Set maxmem=${want}`, edits: [{ span: node.memory.maxmem.m.span(), newText: want }] });
      } else if (node.memory.m) {
        const end = node.memory.m.span().end;
        const slots = dimms && !node.memory.slots ? `,slots=${dimms}` : '';
        fixes.push({ title: `Add maxmem=${want}${slots} to -m`, edits: [{ span: { start: end, end }, newText: `,maxmem=${want}${slots}` }] });
      }
    }
    const why = max === undefined ? `-m has no maxmem (RAM ${hexHuman(ram)})` : `-m maxmem ${hexHuman(max)} equals the RAM size`;
    for (const d of devs) {
      const dimm = DIMM_DEVICES.has(d.driver);
      report({
        span: d.driverM.span(),
        message: `${deviceLabel(d)} needs the hotplug region, but ${why}: give maxmem= above the RAM by at least the memory devices' total${total !== undefined ? ` ${hexHuman(total)}` : ''}${dimm ? ', and slots= for the DIMMs' : ''}. QEMU: "${dimm ? NO_SLOTS : notEnabled}" (${qemuName(qemu)})`,
        related: node.memory.m ? [{ span: node.memory.m.span(), message: 'memory options (-m)' }] : [],
        fixes,
      });
    }
  },
};
