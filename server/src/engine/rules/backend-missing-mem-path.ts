import { Rule } from './rule';

export const rule: Rule = {
  code: 'backend-missing-mem-path',
  severity: 'error',
  summary: 'memory-backend-file needs mem-path= (the host file, /dev/shm file or /dev/daxX.Y device that backs it).',
  enforcedBy: "Parameter 'mem-path' is missing",
  check({ node, report }) {
    for (const b of node.backends.values()) {
      if (b.obj.qomType !== 'memory-backend-file' || b.memPath) continue;
      report({ span: b.obj.typeM.span(), message: `memory-backend-file '${b.id}' has no mem-path=. QEMU: "Parameter 'mem-path' is missing"` });
    }
  },
};
