import { Rule } from './rule';
import { X86_ARCHES } from '../model/model';
import { hexHuman } from './util';

export const rule: Rule = {
  code: 'pci-32bit-exhausted',
  severity: 'error',
  arches: X86_ARCHES,
  summary:
    'BARs that cannot move above 4 GiB (32-bit BARs, ROMs, windows of bridges with 32-bit children) must fit in the 32-bit PCI window below 0xfec00000, or SeaBIOS stops the boot.',
  enforcedBy: 'SeaBIOS: "PCI: out of 32bit address space"',
  check({ node, layout, report }) {
    const l = layout();
    if (!l.exhausted32) return;
    report({
      span: node.memory.m?.span() ?? node.nameSpan,
      message: `The 32-bit BARs need ${hexHuman(l.exhausted32.need)} but the 32-bit PCI window [${hexHuman(l.exhausted32.start)}, 0xfec00000) holds ${hexHuman(0xfec00000n - l.exhausted32.start)}: SeaBIOS stops with "PCI: out of 32bit address space".`,
    });
  },
};
