import { Rule } from './rule';
import { BRIDGE_DRIVERS, PXB_DRIVERS, devProp } from './util';
import { rootBus } from '../model/model';

export const rule: Rule = {
  code: 'device-needs-bus',
  severity: 'error',
  summary:
    "A PCI device without bus= goes on the newest root bus; after a pxb/pxb-cxl that is the expander's bus, which takes only bridges. Give such devices bus=pcie.0 (or a root port).",
  enforcedBy: 'PCI: Only PCI/PCIe bridges can be plugged into pxb-cxl',
  check({ node, qemu, report }) {
    let pxb: string | undefined;
    const root = rootBus(node);
    for (const d of node.devices) {
      if (PXB_DRIVERS.has(d.driver)) {
        pxb = d.driver;
        continue;
      }
      if (!pxb || devProp(d, 'bus') || BRIDGE_DRIVERS.has(d.driver) || qemu.devices[d.driver]?.bus !== 'PCI') continue;
      const end = d.m.span().end;
      report({
        span: d.driverM.span(),
        message: `${d.driver} has no bus=, so QEMU puts it on the newest root bus, the ${pxb}'s, which takes only bridges. QEMU: "PCI: Only PCI/PCIe bridges can be plugged into ${pxb}"`,
        fixes: d.json ? [] : [{ title: `Add bus=${root}`, edits: [{ span: { start: end, end }, newText: `,bus=${root}` }] }],
      });
    }
  },
};
