import { Rule } from './rule';
import { MEMORY_DEVICES } from './memory-device-needs-maxmem';
import { devProp, deviceLabel } from './util';

export const rule: Rule = {
  code: 'memory-device-node',
  severity: 'error',
  summary:
    'A memory device\'s node= (pc-dimm, nvdimm, virtio-mem-pci) must name an existing guest NUMA node: below the number of -numa nodes, or 0 when there are none. QEMU refuses the device otherwise.',
  enforcedBy: "'DIMM property node has value 1' which exceeds the number of numa nodes: 1",
  check({ node, report }) {
    const nodes = node.numa.length;
    const shown = nodes || 1;
    for (const d of node.devices) {
      if (!MEMORY_DEVICES.has(d.driver)) continue;
      const p = devProp(d, 'node');
      if (!p || !/^\d+$/.test(p.value.text)) continue;
      const n = Number(p.value.text);
      if (n < shown) continue;
      const qemu =
        d.driver === 'virtio-mem-pci'
          ? `'node' property has value '${n}', which exceedsthe number of numa nodes: ${shown}`
          : `'DIMM property node has value ${n}' which exceeds the number of numa nodes: ${shown}`;
      report({
        span: p.value.span(),
        message: `${deviceLabel(d)} node=${n}, but the guest has ${nodes ? `${nodes} NUMA node(s) (0…${nodes - 1})` : 'no -numa nodes (only node 0)'}. QEMU: "${qemu}"`,
        related: node.numa.length ? [{ span: node.numa[node.numa.length - 1].m.span(), message: 'last NUMA node' }] : [],
      });
    }
  },
};
