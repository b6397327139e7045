import { Rule } from './rule';
import { X86_ARCHES } from '../model/model';
import { hexHuman } from './util';
import { bdf } from '../layout/pci';

export const rule: Rule = {
  code: 'bar-beyond-phys-bits',
  severity: 'error',
  arches: X86_ARCHES,
  summary:
    "A BAR the firmware places above the guest CPU's physical address width (2^phys-bits; 40 bits = 1 TiB by default) is lost: SeaBIOS 1.16.2 places it anyway, QEMU's own check only looks at the default 64-bit hole, and the guest's Linux drops the window and the BAR. Raise phys-bits (-cpu …,phys-bits=N) or shrink the BAR.",
  enforcedBy: "guest kernel: \"BAR 2 [mem 0x1000000000-0x1fffffffff 64bit pref]: can't claim; no compatible bridge window\" then \"can't assign; no space\"",
  check({ node, layout, report }) {
    const l = layout();
    const limit = 1n << BigInt(l.platform.physBits);
    // Functions the user wrote; a built-in one moves with them.
    for (const f of l.functions.filter((x) => x.source)) {
      for (const b of f.bars) {
        const at = b.firmwareStart ?? b.start;
        if (at === undefined || b.rom || at + b.size <= limit) continue;
        const where = f.source!.driverM.span();
        let need = l.platform.physBits;
        while (1n << BigInt(need) < at + b.size) need++;
        report({
          span: where,
          message: `The firmware will put ${f.device} (${bdf(f)}) BAR${b.bar} of ${hexHuman(b.size)} at ${hexHuman(at)}–${hexHuman(at + b.size - 1n)}, beyond the guest's ${l.platform.physBits} physical address bits (${hexHuman(limit)}): Linux cannot claim it ("can't claim; no compatible bridge window") and ${b.start === undefined ? 'leaves it unassigned ("can\'t assign; no space")' : `moves it to ${hexHuman(b.start)}`}. It needs phys-bits=${need} or more.`,
        });
      }
    }
  },
};
