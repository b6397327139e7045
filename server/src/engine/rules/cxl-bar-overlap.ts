import { Rule } from './rule';
import { X86_ARCHES } from '../model/model';
import { hexHuman } from './util';
import { bdf } from '../layout/pci';

export const rule: Rule = {
  code: 'cxl-bar-overlap',
  severity: 'error',
  arches: X86_ARCHES,
  summary:
    'With cxl=on and no maxmem, QEMU (7.2, and still 10.0) does not tell the firmware where the CXL host registers and windows end (etc/reserved-memory-end), so SeaBIOS puts 64-bit BARs on top of them and the guest reaches neither. Give -m a maxmem larger than the RAM (with slots).',
  enforcedBy: 'silent in QEMU 7.2 and 10.0 (hw/i386/pc.c writes etc/reserved-memory-end only with a device-memory region); seen in a guest: the cxl-rp BAR0 at the CXL host-register block',
  check({ node, qemu, layout, report }) {
    const l = layout();
    const cxl = l.platform.cxl;
    if (!cxl) return;
    const regions = [
      { start: cxl.base, end: cxl.base + 0x100000n - 1n, name: `the CXL host-bridge registers ${hexHuman(cxl.base)}` },
      ...cxl.windows.map((w) => ({ start: w.base, end: w.base + w.size - 1n, name: `CXL window ${w.index} at ${hexHuman(w.base)}` })),
    ];
    const seen = new Set<string>();
    for (const f of l.functions) {
      const items = [
        ...f.bars.filter((b) => b.start !== undefined && !b.rom).map((b) => ({ start: b.start!, size: b.size, what: `BAR${b.bar}` })),
        ...(f.bridge?.windows ?? []).filter((w) => w.start !== undefined).map((w) => ({ start: w.start!, size: w.size, what: `${w.type === 'pref' ? 'prefetchable' : 'memory'} window` })),
      ];
      for (const it of items) {
        const end = it.start + it.size - 1n;
        const hit = regions.find((r) => it.start <= r.end && r.start <= end);
        if (!hit) continue;
        const key = `${f.device}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const where = f.source?.driverM.span() ?? node.memory.m?.span() ?? node.nameSpan;
        report({
          span: where,
          message: `The firmware will place ${f.device} (${bdf(f)}) ${it.what} at ${hexHuman(it.start)}, on top of ${hit.name}: with cxl=on but no maxmem, QEMU ${qemu.version} does not tell SeaBIOS where the CXL ranges end. Add maxmem (and slots) to -m, e.g. -m ${node.memory.size?.m.text ?? '1G'},maxmem=${node.memory.size?.m.text ?? '1G'}+1G,slots=1.`,
          related: node.memory.m ? [{ span: node.memory.m.span(), message: 'no maxmem here' }] : [],
        });
      }
    }
  },
};
