import { Rule } from './rule';
import { hexHuman, ramSize, sizeOf } from './util';

export const rule: Rule = {
  code: 'maxmem-below-ram',
  severity: 'error',
  summary: '-m maxmem must be at least the initial RAM size.',
  enforcedBy: 'invalid value of maxmem: maximum memory size (0x40000000) must be at least the initial memory size (0x80000000)',
  check({ node, report }) {
    const max = sizeOf(node.memory.maxmem);
    if (max === undefined) return;
    const ram = ramSize(node);
    if (max < ram) {
      report({
        span: node.memory.maxmem!.m.span(),
        message: `maxmem ${hexHuman(max)} is below the initial RAM ${hexHuman(ram)}. QEMU: "invalid value of maxmem: maximum memory size (0x${max.toString(16)}) must be at least the initial memory size (0x${ram.toString(16)})"`,
        related: node.memory.size ? [{ span: node.memory.size.m.span(), message: `initial RAM ${hexHuman(ram)}` }] : [],
      });
    }
  },
};
