import { Rule } from './rule';
import { sizeOf } from './util';

export const rule: Rule = {
  code: 'backend-size-zero',
  severity: 'error',
  summary: 'A memory backend needs a non-zero size=.',
  enforcedBy: "property 'size' of memory-backend-file doesn't take value '0'",
  check({ node, report }) {
    for (const b of node.backends.values()) {
      if (!b.size) {
        if (b.obj.qomType !== 'memory-backend-file') report({ span: b.obj.typeM.span(), message: `${b.obj.qomType} '${b.id}' has no size=. QEMU: "can't create backend with size 0"` });
        continue;
      }
      if (sizeOf(b.size) === 0n) report({ span: b.size.m.span(), message: `${b.obj.qomType} '${b.id}' has size 0. QEMU: "property 'size' of ${b.obj.qomType} doesn't take value '0'"` });
    }
  },
};
