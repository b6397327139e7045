import { Rule } from './rule';
import { DIMM_DEVICES, hotplugSpace } from './memory-device-needs-maxmem';
import { deviceLabel, hexHuman } from './util';

export const rule: Rule = {
  code: 'memory-device-needs-slots',
  severity: 'error',
  summary:
    'Every pc-dimm and nvdimm takes one of the -m slots=: with maxmem but no slots (or slots=0) QEMU refuses the DIMM. virtio-mem-pci needs no slot.',
  enforcedBy: "no slots where allocated, please specify the 'slots' option",
  check({ node, report }) {
    const space = hotplugSpace(node);
    if (space === undefined || (node.memory.slots && node.memory.slots.n > 0)) return;
    const dimms = node.devices.filter((d) => DIMM_DEVICES.has(d.driver));
    if (!dimms.length) return;
    const slots = node.memory.slots;
    const maxmem = node.memory.maxmem!;
    const n = Math.min(dimms.length, 256);
    const fix = slots
      ? { title: `Set slots=${n}`, edits: [{ span: slots.m.span(), newText: String(n) }] }
      : { title: `Add slots=${n} to -m`, edits: [{ span: { start: maxmem.m.span().end, end: maxmem.m.span().end }, newText: `,slots=${n}` }] };
    for (const d of dimms) {
      report({
        span: d.driverM.span(),
        message: `${deviceLabel(d)} needs a memory slot, but -m has ${slots ? `slots=${slots.m.text}` : 'no slots='} (hotplug space ${hexHuman(space)}): add slots=${n} or more. QEMU: "no slots where allocated, please specify the 'slots' option"`,
        related: [{ span: (slots ?? maxmem).m.span(), message: slots ? `slots=${slots.m.text}` : 'maxmem given without slots' }],
        fixes: [fix],
      });
    }
  },
};
