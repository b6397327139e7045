import { Rule } from './rule';
import { hexHuman } from './util';
import { bdf } from '../layout/pci';

export const rule: Rule = {
  code: 'bar-beyond-phys-bits',
  severity: 'error',
  summary:
    "A BAR the firmware places above the guest CPU's physical address width (2^phys-bits; 40 bits = 1 TiB by default) cannot be reached by the guest. SeaBIOS 1.16.2 places it anyway and QEMU's own check only looks at the default 64-bit hole. Raise phys-bits (-cpu …,phys-bits=N) or shrink the BAR.",
  check({ node, layout, report }) {
    const l = layout();
    const limit = 1n << BigInt(l.platform.physBits);
    for (const f of l.functions) {
      for (const b of f.bars) {
        if (b.start === undefined || b.rom || b.start + b.size <= limit) continue;
        const where = f.source?.driverM.span() ?? node.nameSpan;
        let need = l.platform.physBits;
        while (1n << BigInt(need) < b.start + b.size) need++;
        report({
          span: where,
          message: `${f.device} (${bdf(f)}) BAR${b.bar} of ${hexHuman(b.size)} will sit at ${hexHuman(b.start)}–${hexHuman(b.start + b.size - 1n)}, beyond the guest's ${l.platform.physBits} physical address bits (${hexHuman(limit)}): the guest cannot reach it. It needs phys-bits=${need} or more.`,
        });
      }
    }
  },
};
