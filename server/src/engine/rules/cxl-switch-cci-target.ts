import { Rule } from './rule';
import { deviceKnown } from '../qemu/catalog';
import { devProp, qemuName } from './util';

const TEXT = 'Target not set';

/**
 * hw/cxl/switch-mailbox-cci.c cswbcci_realize(), QEMU 8.2 and later: the
 * switch mailbox CCI is the management interface of one CXL switch, named by
 * target= (the id of its cxl-upstream port). Applies whenever the QEMU judged
 * for has the device (older ones: unknown-device-type).
 */
export const rule: Rule = {
  code: 'cxl-switch-cci-target',
  severity: 'error',
  summary: 'A cxl-switch-mailbox-cci device (QEMU 8.2 and later) needs target= naming the cxl-upstream port of the switch it manages.',
  enforcedBy: TEXT,
  check({ node, qemu, report }) {
    if (!deviceKnown(qemu, 'cxl-switch-mailbox-cci')) return;
    const ups = node.devices.filter((u) => u.driver === 'cxl-upstream' && u.id);
    for (const d of node.devices) {
      if (d.driver !== 'cxl-switch-mailbox-cci' || devProp(d, 'target')) continue;
      const only = ups.length === 1 ? ups[0] : undefined;
      report({
        span: d.driverM.span(),
        message: `cxl-switch-mailbox-cci${d.id ? ` '${d.id.text}'` : ''} has no target=: it must name the cxl-upstream port of the switch it manages${ups.length ? ` (${ups.map((u) => `'${u.id!.text}'`).join(', ')} here)` : ''}. QEMU: "${TEXT}" (${qemuName(qemu)})`,
        fixes: only && !d.json ? [{ title: `Add target=${only.id!.text}`, edits: [{ span: { start: d.m.span().end, end: d.m.span().end }, newText: `,target=${only.id!.text}` }] }] : [],
      });
    }
  },
};
