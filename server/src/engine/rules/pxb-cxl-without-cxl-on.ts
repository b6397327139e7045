import { Rule } from './rule';
import { cxlOn } from './util';
import { machineBase, X86_ARCHES } from '../model/model';

export const rule: Rule = {
  code: 'pxb-cxl-without-cxl-on',
  severity: 'error',
  arches: X86_ARCHES,
  summary: 'A CXL host bridge (pxb-cxl) needs -machine cxl=on.',
  enforcedBy: 'CXL host bridges present, but cxl=off',
  check({ node, report }) {
    if (cxlOn(node) || machineBase(node.machine.type?.text) !== 'q35') return;
    const pxb = node.devices.find((d) => d.driver === 'pxb-cxl');
    if (!pxb) return;
    report({
      span: pxb.driverM.span(),
      message: `pxb-cxl needs the machine's cxl=on. QEMU: "CXL host bridges present, but cxl=off"`,
      fixes: node.machine.type ? [{ title: 'Add cxl=on to the machine', edits: [{ span: { start: node.machine.type.span().end, end: node.machine.type.span().end }, newText: ',cxl=on' }] }] : [],
    });
  },
};
