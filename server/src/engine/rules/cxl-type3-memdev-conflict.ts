import { Rule } from './rule';
import { qemuAtLeast } from '../qemu/profile';
import { devProp, qemuName } from './util';

const TEXT = '[memdev] cannot be used with new [persistent-memdev] property';

/**
 * hw/mem/cxl_type3.c cxl_setup_memory(), from QEMU 8.1 (when
 * persistent-memdev= arrived): memdev= is the old spelling of
 * persistent-memdev=, and a device may not have both. (QEMU 7.2 has no
 * persistent-memdev=: unknown-property.)
 */
export const rule: Rule = {
  code: 'cxl-type3-memdev-conflict',
  severity: 'error',
  summary:
    'From QEMU 8.1 a cxl-type3 device takes memdev= (the old name of its persistent capacity) or persistent-memdev=, not both.',
  enforcedBy: TEXT,
  check({ node, qemu, report }) {
    if (!qemuAtLeast(qemu, '8.1')) return;
    for (const d of node.devices) {
      if (d.driver !== 'cxl-type3') continue;
      const m = devProp(d, 'memdev');
      const p = devProp(d, 'persistent-memdev');
      if (!m || !p) continue;
      const span = { start: m.keySpan.start, end: m.value.span().end };
      report({
        span,
        message: `cxl-type3${d.id ? ` '${d.id.text}'` : ''} has both memdev=${m.value.text} and persistent-memdev=${p.value.text}: memdev= is the old name of the persistent backend, so a device takes one or the other. QEMU: "${TEXT}" (${qemuName(qemu)})`,
        related: [{ span: { start: p.keySpan.start, end: p.value.span().end }, message: 'the persistent backend, new spelling' }],
        fixes: d.json || m.implied ? [] : [{ title: `Remove memdev=${m.value.text}`, edits: [{ span: { start: m.keySpan.start - 1, end: span.end }, newText: '' }] }],
      });
    }
  },
};
