import { Rule } from './rule';
import { qemuSizeString } from '../text/sizes';
import { DIMM_DEVICES, hotplugSpace, memoryDevices, memoryDeviceSize, nvdimmOn } from './memory-device-needs-maxmem';
import { dimmSlotFailures } from './memory-device-slots-full';
import { devProp, deviceLabel, hexHuman, ramSize } from './util';

export const rule: Rule = {
  code: 'memory-device-space',
  severity: 'error',
  summary:
    'The memory devices (pc-dimm, nvdimm, virtio-mem-pci; each as large as its memdev backend) must fit together into maxmem − RAM: QEMU refuses the first one that does not fit.',
  enforcedBy: 'not enough space, currently 0x30000000 in use of total space for memory devices 0x40000000',
  check({ node, report }) {
    const space = hotplugSpace(node);
    if (space === undefined) return;
    const slotless = new Set(dimmSlotFailures(node).map((f) => f.device));
    const hasSlots = !!node.memory.slots && node.memory.slots.n > 0;
    const devs = memoryDevices(node).filter((d) => {
      // Devices QEMU refuses for another reason first never take space.
      if (DIMM_DEVICES.has(d.driver) && (!hasSlots || slotless.has(d))) return false;
      if (d.driver === 'nvdimm' && !nvdimmOn(node)) return false;
      return true;
    });
    const sizes = devs.map((d) => memoryDeviceSize(node, d));
    const known = sizes.filter((s): s is bigint => s !== undefined);
    const need = known.reduce((a, b) => a + b, 0n);
    const ram = ramSize(node);
    const max = node.memory.maxmem!;
    const want = qemuSizeString(ram + need);
    let used = 0n;
    devs.forEach((d, i) => {
      const s = sizes[i];
      if (s === undefined) return;
      if (used + s <= space) {
        used += s;
        return;
      }
      const p = devProp(d, 'memdev')!;
      report({
        span: p.value.span(),
        message: `${deviceLabel(d)} (memdev '${p.value.text}', ${hexHuman(s)}) does not fit: the memory devices before it use ${hexHuman(used)} of the ${hexHuman(space)} hotplug space (maxmem ${hexHuman(ram + space)} − RAM ${hexHuman(ram)}); all of them need ${hexHuman(need)}, so maxmem must be at least ${hexHuman(ram + need)}. QEMU: "not enough space, currently 0x${used.toString(16)} in use of total space for memory devices 0x${space.toString(16)}"`,
        related: [{ span: max.m.span(), message: `maxmem ${hexHuman(ram + space)}` }],
        fixes: [{ title: `Set maxmem=${want}`, edits: [{ span: max.m.span(), newText: want }] }],
      });
    });
  },
};
