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
    let firstValueEnd = 0;
    for (const a of node.args) {
      if ((a.name !== 'machine' && a.name !== 'M') || !a.value) continue;
      const all = parseKeyvals(a.value, 'type');
      const keys = all.filter((k) => k.key.startsWith('cxl-fmw.'));
      if (!keys.length) continue;
      const span = { start: keys[0].keySpan.start, end: keys[keys.length - 1].value.span().end };
      if (!first) {
        first = span;
        firstValueEnd = a.value.span().end;
        continue;
      }
      // The fix moves this option's keys into the first one. Only for an option written as it is read
      // (no quotes, no variables: "-M<space>value" spans exactly its text) that holds nothing but cxl-fmw keys.
      const optSpan = a.option.span();
      const verbatim = (x: (typeof node.args)[number]) =>
        x.value ? x.value.span().end - x.option.span().start === x.option.text.length + 1 + x.value.text.length : x.option.span().end - x.option.span().start === x.option.text.length;
      // Delete from the end of the option before (so no empty continuation line is left) when that one is verbatim too.
      const prev = node.args[node.args.indexOf(a) - 1];
      const prevEnd = prev && verbatim(prev) ? (prev.value ?? prev.option).span().end : undefined;
      const cut = prevEnd !== undefined && prevEnd <= optSpan.start ? prevEnd : optSpan.start;
      const fixes = verbatim(a) && all.every((k) => k.key.startsWith('cxl-fmw.') && !k.implied)
        ? [{
            title: 'Move these cxl-fmw keys into the first -machine option',
            // (one edit when this option directly follows the first: LSP edits must not overlap)
            edits: cut === firstValueEnd
              ? [{ span: { start: cut, end: a.value.span().end }, newText: `,${a.value.text}` }]
              : [
                  { span: { start: firstValueEnd, end: firstValueEnd }, newText: `,${a.value.text}` },
                  { span: { start: cut, end: a.value.span().end }, newText: '' },
                ],
          }]
        : [];
      report({
        fixes,
        span,
        message: `this -machine option sets ${keys[0].key} but an earlier -machine option already sets cxl-fmw.*: QEMU merges -machine options and refuses a list split across them ("Parameters 'cxl-fmw.*' used inconsistently"). Put every window's cxl-fmw.N.* keys in one -machine option.`,
        related: [{ span: first, message: 'the earlier -machine option with cxl-fmw.*' }],
      });
    }
  },
};
