import { Rule } from './rule';

/**
 * Raised from a probe (engine/qemu/verdict.ts): memfabric ran the user's own
 * QEMU on the node's configuration, with its firmware and no guest, and QEMU
 * refused it or its firmware stopped. The message is QEMU's.
 */
export const rule: Rule = {
  code: 'qemu-refuses',
  severity: 'error',
  summary:
    "The user's own QEMU, run on the node's configuration by `--probe` (with its firmware, without a guest, backing files replaced by scratch files of the same size), refuses it, or its firmware stops before booting. The message is QEMU's own.",
  enforcedBy: 'QEMU itself (whatever it prints at start-up)',
};
