import { Rule } from './rule';

export const rule: Rule = {
  code: 'slots-without-maxmem',
  severity: 'error',
  summary: '-m slots=N needs maxmem= (the size of the hotplug region).',
  enforcedBy: 'slots specified but no max-size',
  check({ node, report }) {
    if (node.memory.slots && !node.memory.maxmem) {
      report({
        span: node.memory.slots.m.span(),
        message: `slots=${node.memory.slots.m.text} without maxmem: QEMU needs maxmem to size the hotplug region. QEMU: "slots specified but no max-size"`,
      });
    }
  },
};
