import { Rule } from './rule';
import { KiB, parseQemuSize } from '../text/sizes';
import { devProp, deviceLabel, hexHuman } from './util';

const MIN = 128n * KiB; // MIN_NAMESPACE_LABEL_SIZE

export const rule: Rule = {
  code: 'nvdimm-label-size',
  severity: 'error',
  summary: 'An nvdimm label-size= must be at least 128 KiB (the minimum namespace label area); QEMU refuses smaller values, including 0. Leave label-size out for no label.',
  enforcedBy: "Property 'nvdimm.label-size' (0x10000) is required at least 0x20000",
  check({ node, report }) {
    for (const d of node.devices) {
      if (d.driver !== 'nvdimm') continue;
      const p = devProp(d, 'label-size');
      if (!p) continue;
      const r = parseQemuSize(p.value.text);
      if (!r.ok || r.value >= MIN) continue;
      report({
        span: p.value.span(),
        message: `${deviceLabel(d)} label-size ${hexHuman(r.value)} is below the minimum label area ${hexHuman(MIN)}. QEMU: "Property 'nvdimm.label-size' (0x${r.value.toString(16)}) is required at least 0x${MIN.toString(16)}"`,
        fixes: [{ title: 'Set label-size=128K', edits: [{ span: p.value.span(), newText: '128K' }] }],
      });
    }
  },
};
