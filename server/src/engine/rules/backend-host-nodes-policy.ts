import { Rule } from './rule';
import { prop } from '../model/model';

export const rule: Rule = {
  code: 'backend-host-nodes-policy',
  severity: 'error',
  summary:
    'A memory backend\'s host-nodes= and policy= go together: host-nodes needs a policy other than default (bind, interleave or preferred), and such a policy needs host-nodes.',
  enforcedBy: 'host-nodes must be empty for policy default, or you should explicitly specify a policy other than default / host-nodes must be set for policy bind',
  check({ node, report }) {
    for (const b of node.backends.values()) {
      const hostNodes = b.obj.props.filter((p) => p.key === 'host-nodes');
      const policy = prop(b.obj.props, 'policy');
      const pol = policy?.value.text ?? 'default';
      if (hostNodes.length && pol === 'default') {
        const h = hostNodes[0];
        report({
          span: h.value.span(),
          message: `Backend '${b.id}' sets host-nodes=${h.value.text} with ${policy ? 'policy=default' : 'no policy (default)'}, which would ignore them: add policy=bind (or interleave/preferred). QEMU: "host-nodes must be empty for policy default, or you should explicitly specify a policy other than default"`,
          related: policy ? [{ span: policy.value.span(), message: 'policy=default' }] : [],
          fixes: [
            policy
              ? { title: 'Set policy=bind', edits: [{ span: policy.value.span(), newText: 'bind' }] }
              : { title: 'Add policy=bind', edits: [{ span: { start: h.value.span().end, end: h.value.span().end }, newText: ',policy=bind' }] },
          ],
        });
      } else if (!hostNodes.length && policy && ['bind', 'interleave', 'preferred'].includes(pol)) {
        report({
          span: policy.value.span(),
          message: `Backend '${b.id}' has policy=${pol} but no host-nodes= to apply it to (e.g. host-nodes=0). QEMU: "host-nodes must be set for policy ${pol}"`,
        });
      }
    }
  },
};
