import { Rule } from './rule';
import { isOn } from './util';

export const rule: Rule = {
  code: 'discard-data-shared',
  severity: 'warning',
  summary:
    'discard-data=on makes QEMU punch out the whole backing file when it exits (madvise MADV_REMOVE): never on shared or persistent memory such as a fabric region.',
  enforcedBy: 'qapi/qom.json MemoryBackendFileProperties.discard-data',
  check({ node, report }) {
    for (const b of node.backends.values()) {
      if (!isOn(b.discardData) || !isOn(b.share)) continue;
      report({
        span: b.discardData!.value.span(),
        message: `discard-data=on on the shared backend '${b.id}': when this QEMU exits it discards the contents of ${b.memPath ? `'${b.memPath.text}'` : 'the file'}, erasing what other VMs wrote there.`,
        fixes: [{ title: 'Set discard-data=off', edits: [{ span: b.discardData!.value.span(), newText: 'off' }] }],
      });
    }
  },
};
