import { Rule } from './rule';
import { regionPlans } from '../model/cxl-regions';
import { guestKernelOf } from '../model/guest-kernel';

export const rule: Rule = {
  code: 'cxl-region-guest-tools',
  severity: 'error',
  summary:
    'A ram region needs a guest whose cxl tool can make one: the 6.1 guest\'s ndctl 76.1 answers "region type \'ram\' not supported yet"; the 6.12 guest (trixie\'s ndctl 81) can (<guest kernel-version="6.12">, the default under QEMU 8.0 and later).',
  enforcedBy: 'cxl create-region -t ram (ndctl 76.1): "region type \'ram\' not supported yet"',
  check({ node, qemu, report }) {
    if (guestKernelOf(node, qemu.version) !== '6.1') return;
    for (const plan of regionPlans(node)) {
      if (plan.type !== 'ram') continue;
      report({
        span: plan.request.type.span(),
        message: `region="ram" on CXL window ${plan.request.window}: the node boots the 6.1 guest${node.guestKernel === '6.1' ? ' (<guest kernel-version="6.1">)' : ` (the default under QEMU ${qemu.version})`}, whose cxl (ndctl 76.1) answers "region type 'ram' not supported yet"; boot the 6.12 guest: <guest kernel-version="6.12">`,
      });
    }
  },
};
