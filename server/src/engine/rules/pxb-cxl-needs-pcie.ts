import { Rule } from './rule';
import { machineBase, X86_ARCHES } from '../model/model';

export const rule: Rule = {
  code: 'pxb-cxl-needs-pcie',
  severity: 'error',
  arches: X86_ARCHES,
  summary: 'A CXL host bridge (pxb-cxl) must sit on a PCI Express root bus: use -machine q35.',
  enforcedBy: 'pxb-cxl devices cannot reside on a PCI bus',
  check({ node, report }) {
    if (machineBase(node.machine.type?.text) !== 'pc') return;
    for (const d of node.devices) {
      if (d.driver !== 'pxb-cxl') continue;
      report({
        span: d.driverM.span(),
        message: `pxb-cxl on the ${node.machine.type?.text ?? 'pc (default)'} machine: its root bus is conventional PCI, and CXL needs PCIe (-machine q35). QEMU: "pxb-cxl devices cannot reside on a PCI bus"`,
        fixes: node.machine.type ? [{ title: 'Use the q35 machine', edits: [{ span: node.machine.type.span(), newText: 'q35' }] }] : [],
      });
    }
  },
};
