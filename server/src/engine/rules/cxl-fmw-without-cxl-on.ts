import { Rule } from './rule';
import { cxlOn } from './util';

export const rule: Rule = {
  code: 'cxl-fmw-without-cxl-on',
  severity: 'error',
  summary: 'CXL windows are only mapped with -machine cxl=on; without it QEMU accepts cxl-fmw.* silently and the guest gets no window.',
  check({ node, report }) {
    if (!node.fmws.length || cxlOn(node) || node.devices.some((d) => d.driver === 'pxb-cxl')) return;
    const w = node.fmws[0];
    const k = w.keys[0];
    report({
      span: { start: k.keySpan.start, end: k.value.span().end },
      message: `cxl-fmw.${w.index} is set but the machine does not have cxl=on: QEMU starts without a word and maps no CXL window, so the guest sees none.`,
      fixes: node.machine.type ? [{ title: 'Add cxl=on to the machine', edits: [{ span: { start: node.machine.type.span().end, end: node.machine.type.span().end }, newText: ',cxl=on' }] }] : [],
    });
  },
};
