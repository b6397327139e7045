import { Rule } from './rule';
import { qemuBool } from '../model/model';
import { regionPlans } from '../model/cxl-regions';
import { guestKernelOf } from '../model/guest-kernel';

export const rule: Rule = {
  code: 'cxl-region-hypervisor',
  severity: 'error',
  summary:
    'Linux 6.2 and later refuse to commit a CXL region in a guest that sees the hypervisor CPUID bit (unless built with CONFIG_CXL_REGION_INVALIDATION_TEST, which Debian\'s is not): a node that is to make a region on the 6.12 guest needs a CPU model without it (-cpu …,-hypervisor; memfabric adds -cpu qemu64,-hypervisor when the node names no CPU).',
  enforcedBy: 'the guest: dmesg "cxl region0: Failed to synchronize CPU cache state", cxl create-region "failed to commit decode: No such device or address"',
  check({ node, qemu, report }) {
    const plans = regionPlans(node);
    if (!plans.length || !node.cpu || guestKernelOf(node, qemu.version) !== '6.12') return;
    const off = node.cpu.props.some((p) => (p.key === '-hypervisor' && p.bare) || (p.key === 'hypervisor' && qemuBool(p.value.text) === false));
    if (off) return;
    const model = node.cpu.model;
    report({
      span: model.span(),
      message: `CPU model '${model.text}' shows the guest the hypervisor CPUID bit, so the 6.12 guest cannot commit the region${plans.length > 1 ? 's' : ''} asked for on CXL window ${plans.map((p) => p.request.window).join(', ')} ("Failed to synchronize CPU cache state"; cxl create-region: "failed to commit decode: No such device or address"). Add -hypervisor: ${model.text},-hypervisor`,
      related: plans.map((p) => ({ span: p.request.type.span(), message: `region="${p.type}" on CXL window ${p.request.window}` })),
      // (no quick fix: regions exist in topologies only, where fixes that add QEMU syntax are not offered)
    });
  },
};
