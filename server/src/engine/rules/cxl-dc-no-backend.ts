import { Rule } from './rule';
import { deviceHasProp } from '../qemu/catalog';
import { devInt, devProp, qemuName } from './util';

const TEXT = 'dynamic capacity must have a backing device';

/**
 * hw/mem/cxl_type3.c cxl_setup_memory(), QEMU 9.1 and later (dynamic
 * capacity): num-dc-regions above 0 needs volatile-dc-memdev=, the backend
 * the regions are carved from. Applies whenever the QEMU judged for has
 * num-dc-regions (older ones: unknown-property).
 */
export const rule: Rule = {
  code: 'cxl-dc-no-backend',
  severity: 'error',
  summary: 'A cxl-type3 device with dynamic-capacity regions (num-dc-regions= above 0, QEMU 9.1 and later) needs volatile-dc-memdev=, the backend its regions are carved from.',
  enforcedBy: TEXT,
  check({ node, qemu, report }) {
    if (!deviceHasProp(qemu, 'cxl-type3', 'num-dc-regions')) return;
    for (const d of node.devices) {
      if (d.driver !== 'cxl-type3') continue;
      const n = devInt(d, 'num-dc-regions');
      if (!n || devProp(d, 'volatile-dc-memdev')) continue;
      const p = devProp(d, 'num-dc-regions')!;
      report({
        span: p.value.span(),
        message: `cxl-type3${d.id ? ` '${d.id.text}'` : ''} has num-dc-regions=${n} but no volatile-dc-memdev= to back its dynamic capacity: add volatile-dc-memdev= naming a memory backend of ${n} × 256 MiB or more (a multiple of ${n} × 256 MiB), or drop num-dc-regions. QEMU: "${TEXT}" (${qemuName(qemu)})`,
      });
    }
  },
};
