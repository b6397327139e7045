import { Rule } from './rule';
import { MStr } from '../text/source';

export const rule: Rule = {
  code: 'duplicate-id',
  severity: 'error',
  summary: 'Ids must be unique among -object ids and among -device ids.',
  enforcedBy: "Duplicate ID 'fam' for object",
  check({ node, report }) {
    const check = (ids: (MStr | undefined)[], kind: string) => {
      const seen = new Map<string, MStr>();
      for (const id of ids) {
        if (!id) continue;
        const first = seen.get(id.text);
        if (first) {
          report({
            span: id.span(),
            message: `The ${kind} id '${id.text}' is already used. QEMU: "Duplicate ID '${id.text}' for ${kind}"`,
            related: [{ span: first.span(), message: `first ${kind} with id '${id.text}'` }],
          });
        } else seen.set(id.text, id);
      }
    };
    check(node.objects.map((o) => o.id), 'object');
    check(node.devices.map((d) => d.id), 'device');
  },
};
