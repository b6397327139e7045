import { Rule } from './rule';

const VALID = [1, 2, 4, 8, 16, 3, 6, 12];

export const rule: Rule = {
  code: 'cxl-fmw-ways',
  severity: 'error',
  summary: 'A CXL window interleaves across its targets: the number of targets (ways) must be 1, 2, 4, 8, 16, 3, 6 or 12.',
  enforcedBy: 'Interleave ways: 5 not supported',
  check({ node, report }) {
    for (const w of node.fmws) {
      const n = w.targets.length;
      if (n === 0 || VALID.includes(n)) continue;
      report({
        span: w.targets[0].keySpan.start < w.targets[n - 1].m.span().end ? { start: w.targets[0].keySpan.start, end: w.targets[n - 1].m.span().end } : w.targets[0].m.span(),
        message: `CXL window ${w.index} has ${n} targets; CXL interleave ways must be one of 1, 2, 3, 4, 6, 8, 12, 16. QEMU: "Interleave ways: ${n} not supported"`,
      });
    }
  },
};
