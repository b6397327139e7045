import { Rule } from './rule';
import { MStr } from '../text/source';
import { devProp } from './util';
import { prop } from '../model/model';

const CONSUMERS: Record<string, string[]> = {
  'ivshmem-plain': ['memdev'],
  'pc-dimm': ['memdev'],
  nvdimm: ['memdev'],
  'virtio-mem-pci': ['memdev'],
  'cxl-type3': ['memdev', 'lsa'],
};

export const rule: Rule = {
  code: 'memdev-busy',
  severity: 'error',
  summary:
    'A memory backend can be mapped by one consumer only (a NUMA node, the machine RAM, an ivshmem, a DIMM, a CXL Type 3 memdev or LSA). QEMU 7.2 refuses the second user, except that cxl-type3 does not check, so a Type 3 device after another user is accepted and aliases its memory.',
  enforcedBy: "can't use already busy memdev: fam",
  check({ node, report }) {
    // Order of realisation: machine RAM and NUMA first (machine init), then -device in order.
    const claimed = new Map<string, { by: string; m: MStr }>();
    const claim = (id: MStr, by: string, checks: boolean) => {
      if (!node.backends.has(id.text)) return;
      const prev = claimed.get(id.text);
      if (prev) {
        report({
          span: id.span(),
          message: checks
            ? `Memory backend '${id.text}' is already used by ${prev.by}. QEMU: "can't use already busy memdev: ${id.text}"`
            : `Memory backend '${id.text}' is already used by ${prev.by}; QEMU 7.2's cxl-type3 does not check this and starts, but both devices then map the same host memory.`,
          related: [{ span: prev.m.span(), message: `first use, by ${prev.by}` }],
        });
        return;
      }
      claimed.set(id.text, { by, m: id });
    };
    const mb = prop(node.machine.props, 'memory-backend');
    if (mb) claim(mb.value, 'the machine RAM (memory-backend)', true);
    for (const n of node.numa) if (n.memdev) claim(n.memdev, `NUMA node ${n.nodeid?.m.text ?? '?'}`, true);
    for (const d of node.devices) {
      for (const key of CONSUMERS[d.driver] ?? []) {
        const p = devProp(d, key);
        if (p) claim(p.value, `${d.driver}${d.id ? ` '${d.id.text}'` : ''} (${key})`, d.driver !== 'cxl-type3');
      }
    }
  },
};
