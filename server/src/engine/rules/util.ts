/** Small helpers the rules share. */
import { MemoryBackend, NodeModel, Prop, QDevice, prop } from '../model/model';
import { hexHuman } from '../text/sizes';

// Facts of the machine that the layout needs too live in the model (model/facts.ts).
export { ramSize, sizeOf, isOn, cxlOn } from '../model/facts';
import { Span } from '../text/source';
import { Fix } from '../diagnostics';

export { hexHuman };

export function devProp(d: QDevice, key: string): Prop | undefined {
  return prop(d.props, key);
}

export function backendOf(node: NodeModel, id: string | undefined): MemoryBackend | undefined {
  return id === undefined ? undefined : node.backends.get(id);
}

/** The backend a device property (memdev=, lsa=) names, with the property. */
export function linkedBackend(node: NodeModel, d: QDevice, key = 'memdev'): { p: Prop; b: MemoryBackend } | undefined {
  const p = devProp(d, key);
  const b = p && node.backends.get(p.value.text);
  return p && b ? { p, b } : undefined;
}

/** Insert ",key=value" right after a QEMU option value (keyval form). */
export function appendPropFix(title: string, after: Span, text: string): Fix {
  return { title, edits: [{ span: { start: after.end, end: after.end }, newText: text }] };
}

export function replaceFix(title: string, at: Span, text: string): Fix {
  return { title, edits: [{ span: at, newText: text }] };
}

/** "-device ivshmem-plain,id=shm0" style label of a device for messages. */
export function deviceLabel(d: QDevice): string {
  return d.id ? `${d.driver} '${d.id.text}'` : d.driver;
}

export const BRIDGE_DRIVERS = new Set([
  'pxb', 'pxb-pcie', 'pxb-cxl', 'pcie-root-port', 'cxl-rp', 'cxl-upstream', 'cxl-downstream', 'ioh3420',
  'x3130-upstream', 'xio3130-downstream', 'pci-bridge', 'pci-bridge-seat', 'pcie-pci-bridge', 'i82801b11-bridge',
]);

export const PXB_DRIVERS = new Set(['pxb', 'pxb-pcie', 'pxb-cxl']);
