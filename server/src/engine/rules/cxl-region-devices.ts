import { Rule } from './rule';
import { regionPlans } from '../model/cxl-regions';

const WAYS = [1, 2, 3, 4, 6, 8, 12, 16];

export const rule: Rule = {
  code: 'cxl-region-devices',
  severity: 'error',
  summary:
    'A region asked for on a CXL window (<window region=…>) is made across every Type 3 device below the window\'s host bridges: there must be at least one below each of them, in a number of CXL interleave ways (1, 2, 3, 4, 6, 8, 12, 16), all of the region\'s kind (ram: volatile capacity, kind="volatile"; pmem: persistent).',
  enforcedBy: 'cxl create-region in the guest (ndctl): it finds no capacity of that type, or no target position for a host bridge without a device',
  check({ node, report }) {
    for (const plan of regionPlans(node)) {
      const at = plan.request.type.span();
      const related = [{ span: plan.request.windowSpan, message: `CXL window ${plan.request.window} (the guest's ${plan.decoder})` }];
      if (!plan.devices.length) {
        report({ span: at, related, message: `region="${plan.type}" on CXL window ${plan.request.window}: no Type 3 device sits below its host bridge${plan.targets.length === 1 ? '' : 's'} ${plan.targets.join(', ') || '(none)'}, so cxl create-region has nothing to map` });
        continue;
      }
      const empty = plan.targets.filter((hb) => !plan.devices.some((d) => d.hostBridge === hb));
      if (empty.length) {
        report({ span: at, related, message: `region="${plan.type}" on CXL window ${plan.request.window}: the window interleaves across ${plan.targets.join(', ')}, but no Type 3 device sits below ${empty.join(', ')}; a region on this window needs a device below each of its host bridges` });
        continue;
      }
      if (!WAYS.includes(plan.devices.length)) {
        report({ span: at, related, message: `region="${plan.type}" on CXL window ${plan.request.window} would interleave ${plan.devices.length} Type 3 devices (${plan.devices.map((d) => d.id).join(', ')}); CXL interleave ways must be one of ${WAYS.join(', ')}` });
        continue;
      }
      const want = plan.type === 'ram' ? 'volatile' : 'persistent';
      for (const d of plan.devices.filter((x) => x.kind !== want)) {
        report({
          span: at,
          message: `region="${plan.type}" needs ${want} capacity, but the Type 3 device '${d.id}' below ${d.hostBridge} is ${d.kind}${d.kind === 'persistent' ? ' (memdev=)' : ' (volatile-memdev=)'}: make it kind="${want}", or ask for region="${plan.type === 'ram' ? 'pmem' : 'ram'}"`,
          related: [...related, { span: d.device.driverM.span(), message: `'${d.id}' (${d.kind})` }],
          fixes: [{ title: `Ask for region="${plan.type === 'ram' ? 'pmem' : 'ram'}"`, edits: [{ span: at, newText: plan.type === 'ram' ? 'pmem' : 'ram' }] }],
        });
      }
    }
  },
};
