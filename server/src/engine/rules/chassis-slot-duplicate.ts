import { Rule } from './rule';
import { MStr } from '../text/source';
import { devProp } from './util';

const SLOTTED = new Set(['pcie-root-port', 'cxl-rp', 'cxl-downstream', 'ioh3420', 'xio3130-downstream']);

export const rule: Rule = {
  code: 'chassis-slot-duplicate',
  severity: 'error',
  summary:
    'Every PCIe slot (root ports and switch downstream ports, CXL ones included) needs a (chassis, slot) pair unique in the whole machine; both default to 0.',
  enforcedBy: "Can't add chassis slot, error -16",
  check({ node, report }) {
    const seen = new Map<string, MStr>();
    for (const d of node.devices) {
      if (!SLOTTED.has(d.driver)) continue;
      const c = devProp(d, 'chassis');
      const s = devProp(d, 'slot');
      const key = `${c ? Number(c.value.text) : 0}/${s ? Number(s.value.text) : 0}`;
      const where = s?.value ?? c?.value ?? d.driverM;
      const first = seen.get(key);
      if (first) {
        const [cc, ss] = key.split('/');
        report({
          span: where.span(),
          message: `chassis ${cc}, slot ${ss} is already used by another PCIe port${!c || !s ? ' (chassis and slot default to 0)' : ''}; give each port its own slot. QEMU: "Can't add chassis slot, error -16"`,
          related: [{ span: first.span(), message: `chassis ${cc}, slot ${ss} first used here` }],
        });
      } else seen.set(key, where);
    }
  },
};
