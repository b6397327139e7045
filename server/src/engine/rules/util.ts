/** Small helpers the rules share. */
import { MemoryBackend, NodeModel, Prop, QDevice, prop } from '../model/model';
import { hexHuman } from '../text/sizes';

// Facts of the machine that the layout needs too live in the model (model/facts.ts).
export { ramSize, sizeOf, isOn, cxlOn } from '../model/facts';
import { Span } from '../text/source';
import { Fix } from '../diagnostics';
import { QemuProfile, qemuAtLeast } from '../qemu/profile';
import { objectHasProp } from '../qemu/catalog';
import { sizeOf, isOn } from '../model/facts';
import { summaryOf } from '../shapes';
import { resolvePath } from './paths';

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

/** "QEMU 10.0.2": the QEMU a finding is judged for, for messages. */
export function qemuName(qemu: { version: string }): string {
  return `QEMU ${qemu.version}`;
}

/** A device's integer property (decimal or 0x hex, as QEMU's integer properties take it), or undefined. */
export function devInt(d: QDevice, key: string): number | undefined {
  const p = devProp(d, key);
  if (!p) return undefined;
  const t = p.value.text.trim();
  if (/^\d+$/.test(t)) return Number(t);
  if (/^0x[0-9a-f]+$/i.test(t)) return Number.parseInt(t.slice(2), 16);
  return undefined;
}

/**
 * Where a memory-backend-file's memory starts in its file: offset= (QEMU 8.1
 * and later; a QEMU without the property refuses it: unknown-property).
 */
export function backendOffset(b: MemoryBackend, qemu: QemuProfile): bigint {
  if (!b.offset || !objectHasProp(qemu, b.obj.qomType, 'offset')) return 0n;
  return sizeOf(b.offset) ?? 0n;
}

/**
 * QEMU's words when a backing file is smaller than a backend needs
 * (qemu_ram_alloc_from_fd): QEMU 7.2 "backing store size 0x.. does not match
 * 'size' option 0x.."; from 8.1 (offset=) the backend's name, the size and the offset.
 */
export function backingStoreText(qemu: QemuProfile, id: string, fileSize: bigint, want: bigint, offset: bigint): string {
  const h = (v: bigint) => `0x${v.toString(16)}`;
  return qemuAtLeast(qemu, '8.1')
    ? `${id} backing store size ${h(fileSize)} is too small for 'size' option ${h(want)} plus 'offset' option ${h(offset)}`
    : `backing store size ${h(fileSize)} does not match 'size' option ${h(want)}`;
}

/** A node's memory-backend-file with share=on and a mem-path: what the cluster rules compare across nodes. */
export interface SharedFile {
  id: string;
  /** The file, resolved against the node's directory. */
  path: string;
  size: bigint | undefined;
  sizeSpan: Span | undefined;
  memPathSpan: Span;
  /** An ivshmem-plain maps it (memdev=): the node's fabric. */
  fabric: boolean;
}

/** A node's shared file backends, in backend order (kept per model; for nodes of one shape, derived: engine/shapes.ts summaryOf). */
export const sharedFiles = summaryOf((node: NodeModel): SharedFile[] => {
  const out: SharedFile[] = [];
  for (const b of node.backends.values()) {
    if (b.obj.qomType !== 'memory-backend-file' || !b.memPath || !isOn(b.share)) continue;
    out.push({
      id: b.id,
      path: resolvePath(node.baseDir, b.memPath.text),
      size: sizeOf(b.size),
      sizeSpan: b.size?.m.span(),
      memPathSpan: b.memPath.span(),
      fabric: node.devices.some((d) => d.driver === 'ivshmem-plain' && devProp(d, 'memdev')?.value.text === b.id),
    });
  }
  return out;
});
