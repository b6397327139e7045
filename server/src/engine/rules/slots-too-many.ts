import { Rule } from './rule';

export const rule: Rule = {
  code: 'slots-too-many',
  severity: 'error',
  summary: 'PC machines support at most 256 memory slots (ACPI_MAX_RAM_SLOTS).',
  enforcedBy: 'unsupported amount of memory slots: 300',
  check({ node, report }) {
    const s = node.memory.slots;
    if (s && s.n > 256) {
      report({ span: s.m.span(), message: `slots=${s.n} is more than the 256 memory slots a PC machine has. QEMU: "unsupported amount of memory slots: ${s.n}"` });
    } else if (s && Number.isNaN(s.n)) {
      report({ span: s.m.span(), message: `slots='${s.m.text}' is not a number. QEMU: "Parameter 'slots' expects a number"` });
    }
  },
};
