import { Rule } from './rule';
import { X86_ARCHES } from '../model/model';
import { hexHuman } from './util';

export const rule: Rule = {
  code: 'memmap-outside-ram',
  severity: 'warning',
  arches: X86_ARCHES,
  summary:
    'A kernel memmap= range that carves RAM into reserved, persistent or soft-reserved memory should lie inside the guest RAM the firmware reports; parts in holes (PCI windows, MMCONFIG, firmware areas) or beyond the end of RAM carve nothing usable.',
  check({ node, layout, report }) {
    const l = layout();
    const ram = l.e820.filter((e) => e.type === 'System RAM');
    // Ranges carved twice: the kernel keeps the higher type, so one of them loses.
    const carved = node.memmap.filter((m) => m.start !== undefined && m.size !== undefined && m.kind !== 'limit' && m.kind !== 'ram');
    carved.forEach((a, i) => {
      for (const b of carved.slice(0, i)) {
        const aEnd = a.start! + a.size! - 1n;
        const bEnd = b.start! + b.size! - 1n;
        if (a.start! <= bEnd && b.start! <= aEnd) {
          report({
            span: a.m.span(),
            message: `memmap range ${hexHuman(a.start!)}–${hexHuman(aEnd)} overlaps ${hexHuman(b.start!)}–${hexHuman(bEnd)}: the kernel keeps the higher E820 type where they meet, so one of the two carvings is lost there.`,
            related: [{ span: b.m.span(), message: 'the other range' }],
          });
        }
      }
    });
    for (const m of node.memmap) {
      if (m.start === undefined || m.size === undefined || m.kind === 'limit' || m.kind === 'ram') continue;
      const start = m.start;
      const end = m.start + m.size - 1n;
      // How much of the range is RAM.
      let covered = 0n;
      for (const r of ram) {
        const s = r.start > start ? r.start : start;
        const e = r.end < end ? r.end : end;
        if (e >= s) covered += e - s + 1n;
      }
      if (covered === m.size) continue;
      const ramText = ram.filter((r) => r.end >= 0x100000n).map((r) => `${hexHuman(r.start)}–${hexHuman(r.end)}`).join(', ');
      report({
        span: m.m.span(),
        message: `memmap range ${hexHuman(start)}–${hexHuman(end)} (${hexHuman(m.size)}) is ${covered === 0n ? 'not' : 'only partly'} in guest RAM (${ramText})${m.kind === 'convert' ? ': only its RAM part changes type' : ''}.`,
      });
    }
  },
};
