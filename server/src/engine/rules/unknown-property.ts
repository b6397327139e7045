import { Rule } from './rule';
import {
  deviceHasProp, deviceKnown, hostBridgeFor, hostBridgeHasProp, machineHasProp, machineQomName, objectHasProp, objectKnown,
} from '../qemu/catalog';
import { machineBase } from '../model/model';

const MOVED: Record<string, string> = {
  'volatile-memdev': "cxl-type3 in QEMU 7.2 has only memdev= (persistent) and lsa=; volatile-memdev and persistent-memdev arrived in 8.0",
  'persistent-memdev': "cxl-type3 in QEMU 7.2 has only memdev= (persistent) and lsa=; volatile-memdev and persistent-memdev arrived in 8.0",
};

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
          message: `${d.driver} has no property '${p.key}'${MOVED[p.key] && d.driver === 'cxl-type3' ? ` (${MOVED[p.key]})` : ''}. QEMU: "Property '${d.driver}.${p.key}' not found"`,
          fixes:
            MOVED[p.key] && d.driver === 'cxl-type3'
              ? [{ title: 'Use memdev= (QEMU 7.2)', edits: [{ span: p.keySpan, newText: 'memdev' }] }]
              : [],
        });
      }
    }
    for (const o of node.objects) {
      if (!objectKnown(qemu, o.qomType) || o.json) continue;
      for (const p of o.props) {
        if (objectHasProp(qemu, o.qomType, p.key)) continue;
        report({ span: p.keySpan, message: `${o.qomType} has no property '${p.key}'. QEMU: "Invalid parameter '${p.key}'"` });
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
