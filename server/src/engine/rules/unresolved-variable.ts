import { Rule } from './rule';

export const rule: Rule = {
  code: 'unresolved-variable',
  severity: 'information',
  summary:
    'A shell variable used in the QEMU invocation is not assigned in the script, so its value is unknown when checking: the checks treat it as empty.',
};
