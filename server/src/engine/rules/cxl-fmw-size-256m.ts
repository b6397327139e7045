import { Rule } from './rule';
import { MiB, alignUp, qemuSizeString } from '../text/sizes';
import { hexHuman, sizeOf } from './util';

export const rule: Rule = {
  code: 'cxl-fmw-size-256m',
  severity: 'error',
  summary: 'A CXL fixed memory window (cxl-fmw.N.size) must be a multiple of 256 MiB.',
  enforcedBy: 'Size of a CXL fixed memory window must my a multiple of 256MiB',
  check({ node, report }) {
    for (const w of node.fmws) {
      const s = sizeOf(w.size);
      if (s === undefined || (s % (256n * MiB) === 0n && s > 0n)) continue;
      const up = alignUp(s === 0n ? 1n : s, 256n * MiB);
      report({
        span: w.size!.m.span(),
        message: `CXL window ${w.index} size ${hexHuman(s)} is not a multiple of 256 MiB (0x10000000); the nearest larger size is ${hexHuman(up)}. QEMU: "Size of a CXL fixed memory window must my a multiple of 256MiB"`,
        fixes: [{ title: `Round up to ${qemuSizeString(up)}`, edits: [{ span: w.size!.m.span(), newText: qemuSizeString(up) }] }],
      });
    }
  },
};
