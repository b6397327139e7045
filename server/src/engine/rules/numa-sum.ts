import { Rule } from './rule';
import { hexHuman, ramSize, sizeOf } from './util';

/** pc-i440fx-X.Y / pc-q35-X.Y up to 5.0 still auto-assign RAM to NUMA nodes (numa_mem_supported). */
function legacyAutoSplit(type: string | undefined): boolean {
  const m = /^pc-(?:i440fx|q35)-(\d+)\.(\d+)$/.exec(type ?? '');
  return !!m && (Number(m[1]) < 5 || (Number(m[1]) === 5 && Number(m[2]) === 0));
}

export const rule: Rule = {
  code: 'numa-sum',
  severity: 'error',
  summary: 'The memory of the NUMA nodes (their memdev sizes, or mem=) must add up to the RAM size given with -m.',
  enforcedBy: 'total memory for NUMA nodes (0x40000000) should equal RAM size (0x80000000)',
  check({ node, report }) {
    if (!node.numa.length) return;
    let total = 0n;
    for (const n of node.numa) {
      if (n.memdev) {
        const s = sizeOf(node.backends.get(n.memdev.text)?.size);
        if (s === undefined) return;
        total += s;
      } else if (n.mem) {
        const s = sizeOf(n.mem);
        if (s === undefined) return;
        total += s;
      } else if (!node.numa.some((x) => x.memdev || x.mem) && legacyAutoSplit(node.machine.type?.text)) {
        return; // machine types up to 5.0 split the RAM across memory-less nodes themselves
      }
    }
    const ram = ramSize(node);
    if (total === ram) return;
    report({
      span: node.memory.size?.m.span() ?? node.numa[0].m.span(),
      message: `The NUMA nodes hold ${hexHuman(total)} but the RAM size is ${hexHuman(ram)}. QEMU: "total memory for NUMA nodes (0x${total.toString(16)}) should equal RAM size (0x${ram.toString(16)})"`,
      related: node.numa.map((n) => ({ span: n.m.span(), message: `NUMA node ${n.nodeid?.m.text ?? '?'}` })),
    });
  },
};
