import { Rule } from './rule';
import { isOn } from './util';

export const rule: Rule = {
  code: 'pmem-without-share',
  severity: 'warning',
  summary:
    'pmem=on asks for persistent memory semantics, but QEMU only maps the file MAP_SHARED (and MAP_SYNC) with share=on: without it the mapping is private, so nothing the guest writes ever reaches the file. QEMU does not check.',
  enforcedBy: 'docs/nvdimm.txt "Guest Data Persistence": persistence needs both pmem=on and share=on',
  check({ node, report }) {
    for (const b of node.backends.values()) {
      if (b.obj.qomType !== 'memory-backend-file' || !isOn(b.pmem) || isOn(b.share)) continue;
      const at = b.share ? b.share.value.span() : b.pmem!.value.span();
      report({
        span: at,
        message: `Backend '${b.id}' has pmem=${b.pmem!.value.text} but ${b.share ? `share=${b.share.value.text}` : 'no share=on (the default is off)'}: QEMU maps ${b.memPath ? `'${b.memPath.text}'` : 'the file'} privately, so the guest's writes never reach it and nothing persists. Add share=on.`,
        related: b.share ? [{ span: b.pmem!.value.span(), message: 'pmem=on' }] : [],
        fixes: [
          b.share
            ? { title: 'Set share=on', edits: [{ span: b.share.value.span(), newText: 'on' }] }
            : { title: 'Add share=on', edits: [{ span: { start: at.end, end: at.end }, newText: ',share=on' }] },
        ],
      });
    }
  },
};
