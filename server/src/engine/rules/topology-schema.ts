import { Rule } from './rule';

export const rule: Rule = {
  code: 'topology-schema',
  severity: 'error',
  summary: 'A topology file must follow the memfabric topology format (docs/topology.md): known elements in their places, required attributes present, values of the right form, ids that exist.',
};
