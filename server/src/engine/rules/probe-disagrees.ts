import { Rule } from './rule';

/**
 * Raised from a probe (engine/qemu/verdict.ts): the memory map QEMU and its
 * firmware built differs from memfabric's prediction. QEMU is right; the
 * disagreement is memfabric's bug, stated with both values.
 */
export const rule: Rule = {
  code: 'probe-disagrees',
  severity: 'information',
  summary:
    "memfabric's predicted memory map (E820 entries, BAR addresses, the 64-bit PCI hole, CXL windows) differs from what the user's QEMU and its firmware built when `--probe` ran it. QEMU is right: the difference is a gap in memfabric's model, shown with both values.",
};
