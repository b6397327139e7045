import { Rule } from './rule';
import { prop } from '../model/model';

/**
 * Whether the machine type still takes -numa node,mem= (numa_mem_supported):
 * only the pc-i440fx-* and pc-q35-* versions up to 5.0. undefined: not an x86 PC type we know.
 */
export function numaMemSupported(type: string | undefined): boolean | undefined {
  const t = type ?? 'pc';
  if (t === 'pc' || t === 'q35' || t === 'isapc') return false;
  const m = /^pc-(?:i440fx|q35)-(\d+)\.(\d+)/.exec(t);
  if (!m) return undefined;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  return major < 5 || (major === 5 && minor === 0);
}

export const rule: Rule = {
  code: 'numa-legacy-mem',
  severity: 'error',
  summary:
    '-numa node,mem= (RAM carved out of -m) is gone for machine types 5.1 and newer (pc, q35, pc-*-7.2): give each node a memory backend with -object memory-backend-ram,id=…,size=… and -numa node,memdev=…. Machine types up to 5.0 still take it, with a deprecation warning.',
  enforcedBy: 'Parameter -numa node,mem is not supported by this machine type',
  check({ node, report }) {
    const type = node.machine.type?.text;
    const supported = numaMemSupported(type);
    if (supported === undefined) return;
    for (const n of node.numa) {
      const p = prop(n.props, 'mem');
      if (!p) continue;
      const id = n.nodeid?.m.text ?? '?';
      report(
        supported
          ? {
              severity: 'warning',
              span: p.keySpan,
              message: `NUMA node ${id}: mem=${p.value.text} is deprecated; use memdev= with a memory-backend-ram of that size. QEMU: "warning: Parameter -numa node,mem is deprecated, use -numa node,memdev instead"`,
            }
          : {
              span: p.keySpan,
              message: `NUMA node ${id}: mem=${p.value.text} is not accepted by machine type ${type ?? 'pc'} (only pc-i440fx-*/pc-q35-* up to 5.0 take it); define -object memory-backend-ram,id=…,size=${p.value.text} and use memdev=. QEMU: "Parameter -numa node,mem is not supported by this machine type"`,
            },
      );
    }
  },
};
