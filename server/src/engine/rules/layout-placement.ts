import { Rule } from './rule';
import { X86_ARCHES } from '../model/model';
import { hexHuman } from './util';

export const rule: Rule = {
  code: 'layout-placement',
  severity: 'information',
  arches: X86_ARCHES,
  optIn: true,
  summary: 'Where the large regions land in the guest: each ivshmem BAR2 (the shared fabric memory) and each CXL window, as QEMU 7.2, SeaBIOS and Linux will place them.',
  check({ node, layout, report }) {
    const l = layout();
    for (const f of l.functions) {
      if (f.driver !== 'ivshmem-plain' || !f.source) continue;
      const b = f.bars.find((x) => x.bar === 2);
      if (b?.start === undefined) continue;
      report({
        span: f.source.driverM.span(),
        message: `${f.device === 'ivshmem-plain' ? 'This ivshmem' : f.device}: BAR2 of ${hexHuman(b.size)} at ${hexHuman(b.start)}–${hexHuman(b.start + b.size - 1n)} (lspci: 0000:${f.bus.toString(16).padStart(2, '0')}:${f.slot.toString(16).padStart(2, '0')}.${f.fn}).`,
      });
    }
    for (const w of l.platform.cxl?.windows ?? []) {
      const fw = node.fmws.find((x) => x.index === w.index);
      const k = fw?.size?.m ?? fw?.keys[0]?.value;
      if (!k || !w.size) continue;
      report({ span: k.span(), message: `CXL Window ${w.index}: ${hexHuman(w.base)}–${hexHuman(w.base + w.size - 1n)} (${hexHuman(w.size)}).` });
    }
  },
};
