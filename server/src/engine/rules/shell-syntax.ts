import { Rule } from './rule';

export const rule: Rule = {
  code: 'shell-syntax',
  severity: 'error',
  summary: 'The launch script must be readable shell: quotes closed, and one QEMU invocation to read.',
};
