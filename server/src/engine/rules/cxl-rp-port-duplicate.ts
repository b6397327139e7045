import { Rule } from './rule';
import { MStr } from '../text/source';
import { devProp } from './util';

export const rule: Rule = {
  code: 'cxl-rp-port-duplicate',
  severity: 'error',
  summary:
    'CXL root ports under one host bridge (and downstream ports under one switch) need distinct port numbers (default 0): HDM decoders route by port number, so only one of two equal ports is reachable. QEMU 7.2 does not check.',
  check({ node, report }) {
    const seen = new Map<string, MStr>();
    for (const d of node.devices) {
      if (d.driver !== 'cxl-rp' && d.driver !== 'cxl-downstream') continue;
      const bus = devProp(d, 'bus')?.value.text ?? '(default bus)';
      const p = devProp(d, 'port');
      const n = p ? Number(p.value.text) : 0;
      const key = `${bus}#${n}`;
      const where = p?.value ?? d.driverM;
      const first = seen.get(key);
      if (first) {
        report({
          span: where.span(),
          message: `port ${n} is already used by another ${d.driver} on bus '${bus}'${p ? '' : ' (port defaults to 0)'}: QEMU 7.2 starts, but CXL decoders route by port number and only one of the two ports is reachable.`,
          related: [{ span: first.span(), message: `port ${n} first used here` }],
        });
      } else seen.set(key, where);
    }
  },
};
