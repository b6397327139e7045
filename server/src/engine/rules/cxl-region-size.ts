import { Rule } from './rule';
import { regionPlans } from '../model/cxl-regions';
import { hexHuman } from './util';

export const rule: Rule = {
  code: 'cxl-region-size',
  severity: 'error',
  summary: 'A region asked for on a CXL window takes the same capacity from each of its Type 3 devices (ways × the smallest capacity): it must fit in the window.',
  enforcedBy: 'cxl create-region in the guest: the root decoder has not enough free space for the region',
  check({ node, report }) {
    for (const plan of regionPlans(node)) {
      if (plan.size === undefined || plan.windowSize === undefined || plan.size <= plan.windowSize) continue;
      report({
        span: plan.request.type.span(),
        related: [{ span: plan.request.windowSpan, message: `CXL window ${plan.request.window}: ${hexHuman(plan.windowSize)}` }],
        message: `region="${plan.type}" on CXL window ${plan.request.window} needs ${hexHuman(plan.size)} (${plan.devices.length} way${plan.devices.length === 1 ? '' : 's'} × ${hexHuman(plan.size / BigInt(plan.devices.length))}), more than the window's ${hexHuman(plan.windowSize)}`,
      });
    }
  },
};
