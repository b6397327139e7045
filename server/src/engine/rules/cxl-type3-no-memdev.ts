import { Rule } from './rule';
import { qemuAtLeast } from '../qemu/profile';
import { deviceHasProp } from '../qemu/catalog';
import { devInt, devProp, qemuName } from './util';

const TEXT_72 = 'memdev property must be set';
const TEXT_81 = 'at least one memdev property must be set';

/**
 * hw/mem/cxl_type3.c cxl_setup_memory(): QEMU 7.2 has only memdev= and asks
 * for it; from 8.1 (volatile-memdev=, persistent-memdev=) any one of the three
 * will do, and from 9.1 dynamic-capacity regions (num-dc-regions > 0) count
 * too (a volatile-dc-memdev= without regions is ignored).
 */
export const rule: Rule = {
  code: 'cxl-type3-no-memdev',
  severity: 'error',
  summary:
    'A cxl-type3 device needs a memory backend: memdev= (the only one QEMU 7.2 has); from 8.1 persistent-memdev= or volatile-memdev= do too, from 9.1 also dynamic-capacity regions (num-dc-regions= above 0).',
  enforcedBy: `${TEXT_72} (QEMU 7.2) / ${TEXT_81} (8.1 and later)`,
  check({ node, qemu, report }) {
    const multi = qemuAtLeast(qemu, '8.1');
    for (const d of node.devices) {
      if (d.driver !== 'cxl-type3' || devProp(d, 'memdev') || devProp(d, 'volatile-memdev') || devProp(d, 'persistent-memdev')) continue;
      const label = `cxl-type3${d.id ? ` '${d.id.text}'` : ''}`;
      if (!multi) {
        report({ span: d.driverM.span(), message: `${label} has no memdev= backend for its capacity (${qemuName(qemu)} has no other). QEMU: "${TEXT_72}" (${qemuName(qemu)})` });
        continue;
      }
      const dc = deviceHasProp(qemu, 'cxl-type3', 'num-dc-regions');
      if (dc && (devInt(d, 'num-dc-regions') ?? 0) > 0) continue;
      const dcMem = dc ? devProp(d, 'volatile-dc-memdev') : undefined;
      report({
        span: d.driverM.span(),
        message: `${label} has no memory backend: give memdev= or persistent-memdev= (persistent), volatile-memdev=${dc ? ', or num-dc-regions= with volatile-dc-memdev= (dynamic capacity)' : ''}${dcMem ? `; volatile-dc-memdev=${dcMem.value.text} is ignored while num-dc-regions is 0` : ''}. QEMU: "${TEXT_81}" (${qemuName(qemu)})`,
        related: dcMem ? [{ span: dcMem.value.span(), message: 'ignored without num-dc-regions' }] : [],
      });
    }
  },
};
