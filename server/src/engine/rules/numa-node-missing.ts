import { Rule } from './rule';

export const rule: Rule = {
  code: 'numa-node-missing',
  severity: 'error',
  summary: 'NUMA node ids must run from 0 without gaps, each once.',
  enforcedBy: 'numa: Node ID missing: 1',
  check({ node, report }) {
    const ids = node.numa.map((n) => n.nodeid?.n).filter((x): x is number => x !== undefined && !Number.isNaN(x));
    if (ids.length !== node.numa.length || !ids.length) return;
    const seen = new Set<number>();
    for (const n of node.numa) {
      if (seen.has(n.nodeid!.n)) report({ span: n.nodeid!.m.span(), message: `NUMA node ${n.nodeid!.n} is defined twice. QEMU: "Duplicate NUMA nodeid: ${n.nodeid!.n}"` });
      seen.add(n.nodeid!.n);
    }
    const max = Math.max(...ids);
    for (let i = 0; i <= max; i++) {
      if (seen.has(i)) continue;
      const last = node.numa.find((n) => n.nodeid!.n === max)!;
      report({ span: last.nodeid!.m.span(), message: `NUMA node ids must be 0…${max} without gaps, but node ${i} is missing. QEMU: "numa: Node ID missing: ${i}"` });
      break;
    }
  },
};
