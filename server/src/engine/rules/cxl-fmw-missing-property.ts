import { Rule } from './rule';

export const rule: Rule = {
  code: 'cxl-fmw-missing-property',
  severity: 'error',
  summary: 'Every CXL fixed memory window needs both cxl-fmw.N.targets.0 (at least one host bridge) and cxl-fmw.N.size.',
  enforcedBy: "Parameter 'cxl-fmw.0.targets' is missing",
  check({ node, report }) {
    for (const w of node.fmws) {
      const where = { start: Math.min(...w.keys.map((k) => k.keySpan.start)), end: Math.max(...w.keys.map((k) => k.value.span().end)) };
      if (!w.targets.length) report({ span: where, message: `CXL window ${w.index} has no targets (cxl-fmw.${w.index}.targets.0=<pxb-cxl id>). QEMU: "Parameter 'cxl-fmw.${w.index}.targets' is missing"` });
      if (!w.size) report({ span: where, message: `CXL window ${w.index} has no size (cxl-fmw.${w.index}.size=…, a multiple of 256M). QEMU: "Parameter 'cxl-fmw.${w.index}.size' is missing"` });
    }
  },
};
