import { Rule } from './rule';
import { machineBase, prop, X86_ARCHES } from '../model/model';
import { GiB, parseQemuSize } from '../text/sizes';
import { hexHuman } from './util';

export const rule: Rule = {
  code: 'max-ram-below-4g',
  severity: 'error',
  arches: X86_ARCHES,
  summary: 'The pc/q35 machine option max-ram-below-4g= caps the RAM placed below the 4 GiB boundary, so it can be at most 4G.',
  enforcedBy: "Machine option 'max-ram-below-4g=8589934592' expects size less than or equal to 4G",
  check({ node, report }) {
    if (machineBase(node.machine.type?.text) === 'other') return;
    const p = prop(node.machine.props, 'max-ram-below-4g');
    if (!p) return;
    const r = parseQemuSize(p.value.text);
    if (!r.ok || r.value <= 4n * GiB) return;
    report({
      span: p.value.span(),
      message: `max-ram-below-4g ${hexHuman(r.value)} is above 4 GiB (0x100000000): only RAM below the 4 GiB boundary can be capped. QEMU: "Machine option 'max-ram-below-4g=${r.value}' expects size less than or equal to 4G"`,
      fixes: [{ title: 'Set max-ram-below-4g=4G', edits: [{ span: p.value.span(), newText: '4G' }] }],
    });
  },
};
