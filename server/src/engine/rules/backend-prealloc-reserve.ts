import { Rule } from './rule';
import { prop } from '../model/model';
import { isOn } from './util';

export const rule: Rule = {
  code: 'backend-prealloc-reserve',
  severity: 'error',
  summary: 'A memory backend cannot both preallocate (prealloc=on) and skip reserving swap space (reserve=off, MAP_NORESERVE): QEMU refuses the pair in either order.',
  enforcedBy: "'prealloc=on' and 'reserve=off' are incompatible",
  check({ node, report }) {
    for (const b of node.backends.values()) {
      const reserve = prop(b.obj.props, 'reserve');
      if (!reserve || isOn(reserve, true) || !isOn(b.prealloc)) continue;
      report({
        span: reserve.value.span(),
        message: `Backend '${b.id}' has prealloc=${b.prealloc!.value.text} and reserve=${reserve.value.text}: preallocation needs the reserved mapping. QEMU: "'prealloc=on' and 'reserve=off' are incompatible"`,
        related: [{ span: b.prealloc!.value.span(), message: `prealloc=${b.prealloc!.value.text}` }],
        fixes: [
          { title: 'Set reserve=on', edits: [{ span: reserve.value.span(), newText: 'on' }] },
          { title: 'Set prealloc=off', edits: [{ span: b.prealloc!.value.span(), newText: 'off' }] },
        ],
      });
    }
  },
};
