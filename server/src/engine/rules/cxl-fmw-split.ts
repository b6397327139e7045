import { Rule } from './rule';
import { parseKeyvals } from '../syntax/qemu-args';

/**
 * QEMU merges the -machine options into one dictionary; a list property such
 * as cxl-fmw may come from one of them only. A second -machine (or -M) that
 * also sets cxl-fmw.* (another window, or another key of the same window) is
 * refused before the machine is built.
 */
export const rule: Rule = {
  code: 'cxl-fmw-split',
  severity: 'error',
  summary: 'All cxl-fmw.* keys (every CXL fixed memory window) must be in one -machine option; QEMU refuses a second -machine that also sets cxl-fmw.*.',
  enforcedBy: "Parameters 'cxl-fmw.*' used inconsistently",
  check({ node, report }) {
    let first: { start: number; end: number } | undefined;
    for (const a of node.args) {
      if ((a.name !== 'machine' && a.name !== 'M') || !a.value) continue;
      const keys = parseKeyvals(a.value, 'type').filter((k) => k.key.startsWith('cxl-fmw.'));
      if (!keys.length) continue;
      const span = { start: keys[0].keySpan.start, end: keys[keys.length - 1].value.span().end };
      if (!first) {
        first = span;
        continue;
      }
      report({
        span,
        message: `this -machine option sets ${keys[0].key} but an earlier -machine option already sets cxl-fmw.*: QEMU merges -machine options and refuses a list split across them ("Parameters 'cxl-fmw.*' used inconsistently"). Put every window's cxl-fmw.N.* keys in one -machine option.`,
        related: [{ span: first, message: 'the earlier -machine option with cxl-fmw.*' }],
      });
    }
  },
};
