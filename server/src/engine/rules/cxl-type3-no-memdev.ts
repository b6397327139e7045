import { Rule } from './rule';
import { devProp } from './util';

export const rule: Rule = {
  code: 'cxl-type3-no-memdev',
  severity: 'error',
  summary: 'A cxl-type3 device needs memdev= (in QEMU 7.2, its persistent capacity).',
  enforcedBy: 'memdev property must be set',
  check({ node, report }) {
    for (const d of node.devices) {
      if (d.driver !== 'cxl-type3' || devProp(d, 'memdev') || devProp(d, 'volatile-memdev') || devProp(d, 'persistent-memdev')) continue;
      report({ span: d.driverM.span(), message: `cxl-type3${d.id ? ` '${d.id.text}'` : ''} has no memdev= backend for its capacity. QEMU: "memdev property must be set"` });
    }
  },
};
