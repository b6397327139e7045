import { Rule } from './rule';
import { Fix } from '../diagnostics';
import { prop } from '../model/model';
import { nvdimmOn } from './memory-device-needs-maxmem';
import { deviceLabel } from './util';

export const rule: Rule = {
  code: 'nvdimm-needs-nvdimm-on',
  severity: 'error',
  summary: 'An nvdimm device needs the machine option nvdimm=on (-M q35,nvdimm=on), which builds the ACPI NFIT; QEMU refuses the nvdimm without it.',
  enforcedBy: "nvdimm is not enabled: missing 'nvdimm' in '-M'",
  check({ node, report }) {
    // libvirt adds nvdimm=on itself for <memory model='nvdimm'>.
    if (node.kind === 'libvirt' || nvdimmOn(node)) return;
    const devs = node.devices.filter((d) => d.driver === 'nvdimm');
    if (!devs.length) return;
    const p = prop(node.machine.props, 'nvdimm');
    const fixes: Fix[] = [];
    if (p) fixes.push({ title: 'Set nvdimm=on', edits: [{ span: p.value.span(), newText: 'on' }] });
    else {
      const m = node.args.find((a) => (a.name === 'machine' || a.name === 'M') && a.value && !a.value.text.trimStart().startsWith('{'));
      const at = node.machine.type?.span().end ?? m?.value?.span().end;
      if (at !== undefined) fixes.push({ title: 'Add nvdimm=on to the machine', edits: [{ span: { start: at, end: at }, newText: ',nvdimm=on' }] });
    }
    for (const d of devs) {
      report({
        span: d.driverM.span(),
        message: `${deviceLabel(d)} needs the machine option nvdimm=on${p ? ` (it is nvdimm=${p.value.text})` : ''}. QEMU: "nvdimm is not enabled: missing 'nvdimm' in '-M'"`,
        related: p ? [{ span: p.value.span(), message: `nvdimm=${p.value.text}` }] : [],
        fixes,
      });
    }
  },
};
