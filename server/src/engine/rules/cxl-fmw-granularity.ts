import { Rule } from './rule';
import { hexHuman, sizeOf } from './util';

const VALID = [256n, 512n, 1024n, 2048n, 4096n, 8192n, 16384n];

export const rule: Rule = {
  code: 'cxl-fmw-granularity',
  severity: 'error',
  summary: 'A CXL window interleave-granularity must be 256, 512, 1k, 2k, 4k, 8k or 16k bytes (default 256).',
  enforcedBy: 'Interleave granularity: 100 invalid',
  check({ node, report }) {
    for (const w of node.fmws) {
      const g = sizeOf(w.granularity);
      if (g === undefined || VALID.includes(g)) continue;
      report({
        span: w.granularity!.m.span(),
        message: `CXL window ${w.index} interleave granularity ${hexHuman(g)} is not one of 256, 512, 1k, 2k, 4k, 8k, 16k. QEMU: "Interleave granularity: ${g} invalid"`,
      });
    }
  },
};
