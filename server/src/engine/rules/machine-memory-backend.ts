import { Rule } from './rule';
import { prop } from '../model/model';
import { qemuSizeString } from '../text/sizes';
import { hexHuman, ramSize, sizeOf } from './util';

export const rule: Rule = {
  code: 'machine-memory-backend',
  severity: 'error',
  summary:
    '-machine memory-backend=ID makes that backend the whole guest RAM: its size must equal -m (when -m is given), and it cannot be combined with -numa node,memdev= (NUMA nodes then bring their own backends).',
  enforcedBy: "Machine memory size does not match the size of the memory backend / '-machine memory-backend' and '-numa memdev' properties are mutually exclusive",
  check({ node, report }) {
    const mb = prop(node.machine.props, 'memory-backend');
    if (!mb) return;
    const numaMemdevs = node.numa.filter((n) => n.memdev);
    if (numaMemdevs.length) {
      report({
        span: mb.value.span(),
        message: `-machine memory-backend=${mb.value.text} cannot be combined with -numa node,memdev= (${numaMemdevs.length} node(s)): drop memory-backend= and let the NUMA backends make up the RAM. QEMU: "'-machine memory-backend' and '-numa memdev' properties are mutually exclusive"`,
        related: numaMemdevs.map((n) => ({ span: n.memdev!.span(), message: `NUMA node ${n.nodeid?.m.text ?? '?'} memdev` })),
      });
    }
    const b = node.backends.get(mb.value.text);
    const size = sizeOf(b?.size);
    const m = sizeOf(node.memory.size);
    // Without -m (or -m 0) QEMU takes the RAM size from the backend.
    if (!b || size === undefined || size === 0n || m === undefined || m === 0n) return;
    const ram = ramSize(node);
    if (size === ram) return;
    report({
      span: b.size!.m.span(),
      message: `Backend '${b.id}' is the machine RAM (memory-backend=) but its size ${hexHuman(size)} differs from -m ${hexHuman(ram)}. QEMU: "Machine memory size does not match the size of the memory backend"`,
      related: [
        { span: node.memory.size!.m.span(), message: `-m ${hexHuman(ram)}` },
        { span: mb.value.span(), message: 'the machine RAM backend' },
      ],
      fixes: [
        { title: `Set size=${qemuSizeString(ram)}`, edits: [{ span: b.size!.m.span(), newText: qemuSizeString(ram) }] },
        { title: `Set -m ${qemuSizeString(size)}`, edits: [{ span: node.memory.size!.m.span(), newText: qemuSizeString(size) }] },
      ],
    });
  },
};
