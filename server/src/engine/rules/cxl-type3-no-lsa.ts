import { Rule } from './rule';
import { devProp } from './util';

export const rule: Rule = {
  code: 'cxl-type3-no-lsa',
  severity: 'error',
  summary: 'In QEMU 7.2 every cxl-type3 device needs lsa= (a memory backend for its label storage area).',
  enforcedBy: 'lsa property must be set',
  check({ node, report }) {
    for (const d of node.devices) {
      if (d.driver !== 'cxl-type3' || devProp(d, 'lsa') || !devProp(d, 'memdev')) continue;
      report({ span: d.driverM.span(), message: `cxl-type3${d.id ? ` '${d.id.text}'` : ''} has no lsa= (label storage area backend); QEMU 7.2 requires one for every Type 3 device. QEMU: "lsa property must be set"` });
    }
  },
};
