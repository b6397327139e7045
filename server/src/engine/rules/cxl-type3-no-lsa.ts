import { Rule } from './rule';
import { qemuAtLeast } from '../qemu/profile';
import { devProp, qemuName } from './util';

const TEXT_72 = 'lsa property must be set';
const TEXT_81 = 'lsa property must be set for persistent devices';

/**
 * hw/mem/cxl_type3.c cxl_setup_memory(): QEMU 7.2 asks every Type 3 device
 * for lsa= (after its memdev=); from 8.1 only a device with persistent
 * capacity (memdev=, which means persistent, or persistent-memdev=) needs one.
 */
export const rule: Rule = {
  code: 'cxl-type3-no-lsa',
  severity: 'error',
  summary:
    'A cxl-type3 device with persistent capacity (memdev= or persistent-memdev=) needs lsa= (a memory backend for its label storage area); QEMU 7.2 asks every Type 3 device for one, from 8.1 a volatile-only device needs none.',
  enforcedBy: `${TEXT_72} (QEMU 7.2) / ${TEXT_81} (8.1 and later)`,
  check({ node, qemu, report }) {
    const multi = qemuAtLeast(qemu, '8.1');
    for (const d of node.devices) {
      if (d.driver !== 'cxl-type3' || devProp(d, 'lsa')) continue;
      const label = `cxl-type3${d.id ? ` '${d.id.text}'` : ''}`;
      if (!multi) {
        // 7.2 asks for memdev= first (cxl-type3-no-memdev).
        if (!devProp(d, 'memdev')) continue;
        report({ span: d.driverM.span(), message: `${label} has no lsa= (label storage area backend); ${qemuName(qemu)} requires one for every Type 3 device. QEMU: "${TEXT_72}" (${qemuName(qemu)})` });
        continue;
      }
      // memdev= together with persistent-memdev= is refused first (cxl-type3-memdev-conflict).
      const p = devProp(d, 'persistent-memdev') ?? devProp(d, 'memdev');
      if (!p || (devProp(d, 'memdev') && devProp(d, 'persistent-memdev'))) continue;
      report({
        span: d.driverM.span(),
        message: `${label} has persistent capacity (${p.key}=${p.value.text}) but no lsa= (label storage area backend); ${qemuName(qemu)} requires one for persistent devices (a volatile-memdev= alone needs none). QEMU: "${TEXT_81}" (${qemuName(qemu)})`,
        related: [{ span: p.value.span(), message: 'persistent capacity' }],
      });
    }
  },
};
