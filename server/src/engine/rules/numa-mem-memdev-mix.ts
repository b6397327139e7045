import { Rule } from './rule';
import { NumaNode, prop } from '../model/model';
import { Span } from '../text/source';

export const rule: Rule = {
  code: 'numa-mem-memdev-mix',
  severity: 'error',
  summary: 'All -numa nodes must take their memory the same way: either every one with mem= or every one with memdev=, never a mix.',
  enforcedBy: 'numa configuration should use either mem= or memdev=,mixing both is not allowed',
  check({ node, report }) {
    let first: { node: NumaNode; kind: 'mem' | 'memdev'; id: string; span: Span } | undefined;
    for (const n of node.numa) {
      const mem = prop(n.props, 'mem');
      const memdev = prop(n.props, 'memdev');
      const id = n.nodeid?.m.text ?? '?';
      for (const [kind, p] of [['mem', mem], ['memdev', memdev]] as const) {
        if (!p) continue;
        if (!first) {
          first = { node: n, kind, id, span: p.keySpan };
          continue;
        }
        if (first.kind === kind) continue;
        report({
          span: p.keySpan,
          message: `${first.node === n ? `NUMA node ${id} sets both mem= and memdev=` : `NUMA node ${id} uses ${kind}= but node ${first.id} uses ${first.kind}=`}: use memdev= on every node. QEMU: "numa configuration should use either mem= or memdev=,mixing both is not allowed"`,
          related: [{ span: first.span, message: `node ${first.id} uses ${first.kind}=` }],
        });
      }
    }
  },
};
