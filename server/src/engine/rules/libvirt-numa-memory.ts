import { Rule } from './rule';

export const rule: Rule = {
  code: 'libvirt-numa-memory',
  severity: 'warning',
  summary: 'With <numa> cells, libvirt replaces <memory> by the sum of the cells without a word: the two should agree.',
};
