import { Rule } from './rule';
import { devProp } from './util';

export const rule: Rule = {
  code: 'ivshmem-no-memdev',
  severity: 'error',
  summary: 'ivshmem-plain needs memdev= naming the memory backend to share.',
  enforcedBy: "You must specify a 'memdev'",
  check({ node, report }) {
    for (const d of node.devices) {
      if (d.driver !== 'ivshmem-plain' || devProp(d, 'memdev')) continue;
      report({ span: d.driverM.span(), message: `ivshmem-plain${d.id ? ` '${d.id.text}'` : ''} has no memdev=. QEMU: "You must specify a 'memdev'"` });
    }
  },
};
