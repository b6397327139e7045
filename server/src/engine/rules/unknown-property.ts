import { Rule } from './rule';
import {
  deviceHasProp, deviceKnown, hostBridgeFor, hostBridgeHasProp, machineHasProp, machineQomName, objectHasProp, objectKnown,
} from '../qemu/catalog';
import { machineBase } from '../model/model';

/**
 * Properties that newer QEMUs have (test/corpus/VERSIONS.md): when the QEMU
 * judged for lacks one, say from which release it exists.
 */
const SINCE: Record<string, Record<string, string>> = {
  'cxl-type3': { 'volatile-memdev': '8.1', 'persistent-memdev': '8.1', 'num-dc-regions': '9.1', 'volatile-dc-memdev': '9.1' },
  'virtio-mem-pci': { 'dynamic-memslots': '8.2' },
  'memory-backend-file': { offset: '8.1', rom: '8.2' },
};

function sinceHint(type: string, key: string, version: string): string {
  const since = SINCE[type]?.[key];
  if (!since) return '';
  if (type === 'cxl-type3' && (key === 'volatile-memdev' || key === 'persistent-memdev')) {
    return ` (cxl-type3 in QEMU ${version} has only memdev= (persistent) and lsa=; volatile-memdev and persistent-memdev arrived in 8.1)`;
  }
  return ` (it arrived in QEMU ${since}; this is QEMU ${version})`;
}

export const rule: Rule = {
  code: 'unknown-property',
  severity: 'error',
  summary:
    'Every property must exist on the object it is set on: the machine, a -device driver, an -object type, or the -global driver named. Host-bridge properties such as pci-hole64-size are set with -global, not on -machine.',
  enforcedBy: "Property 'pc-q35-7.2-machine.pci-hole64-size' not found",
  check({ node, qemu, report }) {
    const base = machineBase(node.machine.type?.text);
    for (const p of node.machine.props) {
      if (machineHasProp(qemu, base, p.key)) continue;
      const hb = hostBridgeFor(base);
      const onBridge = hostBridgeHasProp(qemu, hb, p.key);
      report({
        span: p.keySpan,
        message: `The ${node.machine.type?.text ?? 'pc'} machine has no property '${p.key}'${onBridge ? `: it is a property of the host bridge ${hb}; set it with -global ${hb}.${p.key}=${p.value.text}` : ''}. QEMU: "Property '${machineQomName(qemu, node.machine.type?.text)}.${p.key}' not found"`,
        // The fix that moves it to -global is offered by the server, which knows how to edit each input kind.
      });
    }
    for (const d of node.devices) {
      if (!deviceKnown(qemu, d.driver)) continue;
      for (const p of d.props) {
        if (deviceHasProp(qemu, d.driver, p.key)) continue;
        report({
          span: p.keySpan,
          message: `${d.driver} has no property '${p.key}'${sinceHint(d.driver, p.key, qemu.version)}. QEMU: "Property '${d.driver}.${p.key}' not found"`,
          fixes:
            d.driver === 'cxl-type3' && (p.key === 'volatile-memdev' || p.key === 'persistent-memdev')
              ? [{ title: `Use memdev= (QEMU ${qemu.version})`, edits: [{ span: p.keySpan, newText: 'memdev' }] }]
              : [],
        });
      }
    }
    for (const o of node.objects) {
      if (!objectKnown(qemu, o.qomType) || o.json) continue;
      for (const p of o.props) {
        if (objectHasProp(qemu, o.qomType, p.key)) continue;
        report({ span: p.keySpan, message: `${o.qomType} has no property '${p.key}'${sinceHint(o.qomType, p.key, qemu.version)}. QEMU: "Invalid parameter '${p.key}'"` });
      }
    }
    for (const g of node.globals) {
      if (g.driver === 'q35-pcihost' || g.driver === 'i440FX-pcihost') {
        if (!hostBridgeHasProp(qemu, g.driver, g.property)) {
          report({ span: g.keyM.span(), message: `${g.driver} has no property '${g.property}'. QEMU: "can't apply global ${g.driver}.${g.property}=${g.value.text}: Property '${g.driver}.${g.property}' not found"` });
        }
        continue;
      }
      if (deviceKnown(qemu, g.driver)) {
        if (!deviceHasProp(qemu, g.driver, g.property)) {
          report({ span: g.keyM.span(), message: `${g.driver} has no property '${g.property}'. QEMU: "can't apply global ${g.driver}.${g.property}=${g.value.text}: Property '${g.driver}.${g.property}' not found"` });
        }
        continue;
      }
      report({ severity: 'warning', span: g.keyM.span(), message: `-global names '${g.driver}', which is not a device type QEMU ${qemu.version} has, so it has no effect. QEMU: "warning: global ${g.driver}.${g.property} has invalid class name"` });
    }
  },
};
