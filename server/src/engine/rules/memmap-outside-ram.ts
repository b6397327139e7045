import { Rule } from './rule';
import { hexHuman } from './util';

export const rule: Rule = {
  code: 'memmap-outside-ram',
  severity: 'warning',
  summary:
    'A kernel memmap= range that carves RAM into reserved, persistent or soft-reserved memory should lie inside the guest RAM the firmware reports; parts in holes (PCI windows, MMCONFIG, firmware areas) or beyond the end of RAM carve nothing usable.',
  check({ node, layout, report }) {
    const l = layout();
    const ram = l.e820.filter((e) => e.type === 'System RAM');
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
