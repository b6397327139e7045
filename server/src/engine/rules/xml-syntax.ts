import { Rule } from './rule';

export const rule: Rule = {
  code: 'xml-syntax',
  severity: 'error',
  summary: 'The document must be well-formed XML.',
  enforcedBy: 'libxml2 (libvirt), and memfabric for topology files',
};
