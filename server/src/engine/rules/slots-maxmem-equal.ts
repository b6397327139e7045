import { Rule } from './rule';
import { hexHuman, ramSize, sizeOf } from './util';

export const rule: Rule = {
  code: 'slots-maxmem-equal',
  severity: 'error',
  summary: 'With memory slots, maxmem must be larger than the initial RAM (the difference is the hotplug space).',
  enforcedBy: 'invalid value of maxmem: memory slots were specified but maximum memory size (0x80000000) is equal to the initial memory size (0x80000000)',
  check({ node, report }) {
    const max = sizeOf(node.memory.maxmem);
    const slots = node.memory.slots;
    if (max === undefined || !slots || !(slots.n > 0)) return;
    const ram = ramSize(node);
    if (max === ram) {
      report({
        span: node.memory.maxmem!.m.span(),
        message: `maxmem ${hexHuman(max)} equals the initial RAM, leaving no hotplug space for slots=${slots.n}. QEMU: "invalid value of maxmem: memory slots were specified but maximum memory size (0x${max.toString(16)}) is equal to the initial memory size (0x${ram.toString(16)})"`,
        related: [{ span: slots.m.span(), message: `slots=${slots.n}` }],
      });
    }
  },
};
