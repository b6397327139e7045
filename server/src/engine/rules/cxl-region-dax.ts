import { Rule } from './rule';
import { regionPlans } from '../model/cxl-regions';

export const rule: Rule = {
  code: 'cxl-region-dax',
  severity: 'error',
  summary: 'dax="fsdax" is a pmem namespace mode (ndctl create-namespace -m fsdax): a ram region offers devdax or system-ram only.',
  enforcedBy: 'a ram region has no namespaces: its DAX device comes from the region itself (daxctl)',
  check({ node, report }) {
    for (const plan of regionPlans(node)) {
      if (plan.type !== 'ram' || plan.dax !== 'fsdax' || !plan.request.dax) continue;
      const span = plan.request.dax.span();
      report({
        span,
        message: 'dax="fsdax" needs a pmem region (a namespace in fsdax mode, /dev/pmemN); a ram region becomes devdax or system-ram',
        fixes: [{ title: 'Use dax="system-ram"', edits: [{ span, newText: 'system-ram' }] }, { title: 'Use dax="devdax"', edits: [{ span, newText: 'devdax' }] }],
      });
    }
  },
};
