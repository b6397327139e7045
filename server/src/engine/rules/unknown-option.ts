import { Rule } from './rule';

export const rule: Rule = {
  code: 'unknown-option',
  severity: 'error',
  summary: 'Every word of a QEMU command line must be an option QEMU 7.2 knows, followed by its argument when it takes one.',
  enforcedBy: "qemu-system-x86_64: -foo: invalid option",
};
