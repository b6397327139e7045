import { Rule } from './rule';
import { MStr } from '../text/source';
import { devProp, PXB_DRIVERS } from './util';

export const rule: Rule = {
  code: 'bus-nr-duplicate',
  severity: 'error',
  summary: 'Each PCI expander bridge (pxb, pxb-pcie, pxb-cxl) needs its own bus_nr (default 0).',
  enforcedBy: 'Bus 12 is already in use',
  check({ node, report }) {
    const seen = new Map<number, MStr>();
    for (const d of node.devices) {
      if (!PXB_DRIVERS.has(d.driver)) continue;
      const p = devProp(d, 'bus_nr');
      const n = p ? Number(p.value.text) : 0;
      const where = p?.value ?? d.driverM;
      const first = seen.get(n);
      if (first) {
        report({
          span: where.span(),
          message: `bus_nr ${n} is already taken by another expander bridge${p ? '' : ' (bus_nr defaults to 0)'}. QEMU: "Bus ${n} is already in use"`,
          related: [{ span: first.span(), message: `bus_nr ${n} first used here` }],
        });
      } else seen.set(n, where);
    }
  },
};
