import { Rule } from './rule';
import { MiB } from '../text/sizes';
import { hexHuman, sizeOf } from './util';

export const rule: Rule = {
  code: 'dax-align',
  severity: 'error',
  summary: 'A backend on a device-DAX character device (mem-path=/dev/daxX.Y) needs align= at least the DAX region alignment, usually 2M.',
  enforcedBy: "backing store align 0x200000 is larger than 'align' option 0x0",
  check({ node, report }) {
    for (const b of node.backends.values()) {
      if (!b.memPath || !/^\/dev\/dax\d+\.\d+$/.test(b.memPath.text)) continue;
      const a = sizeOf(b.align) ?? 0n;
      if (a >= 2n * MiB) continue;
      const at = b.align ? b.align.m.span() : b.obj.m.span();
      report({
        span: b.align ? b.align.m.span() : b.memPath.span(),
        message: `'${b.memPath.text}' is a device-DAX device, which maps in 2 MiB units: the backend needs align=2M (it has ${b.align ? hexHuman(a) : 'none'}). QEMU: "backing store align 0x200000 is larger than 'align' option 0x${a.toString(16)}"`,
        fixes: [b.align ? { title: 'Set align=2M', edits: [{ span: at, newText: '2M' }] } : { title: 'Add align=2M', edits: [{ span: { start: at.end, end: at.end }, newText: ',align=2M' }] }],
      });
    }
  },
};
