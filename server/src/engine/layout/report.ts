/**
 * The layout report shared by `memfabric layout --format json` and the
 * language server's memfabric/layout request: hex in lower case, `end`
 * inclusive as /proc/iomem prints it.
 */
import type { LayoutNode, LayoutResult } from '../../lsp/protocol';
import { NodeModel } from '../model/model';
import { IomemEntry, NodeLayout, computeLayout } from './index';
import { QemuProfile, layoutQemu, shortVersion } from '../qemu/profile';

/** The QEMU versions (major.minor) the layout model was checked against, each with its SeaBIOS. */
export const MODELLED: Record<string, string> = { '7.2': '1.16.2', '10.0': '1.16.3' };

const hx = (v: bigint) => '0x' + v.toString(16);

export function layoutJson(l: NodeLayout): LayoutNode {
  const flat = (es: IomemEntry[]) => es.map((e) => ({ start: hx(e.start), end: hx(e.end), name: e.name }));
  return {
    name: l.name,
    qemuVersion: l.qemuVersion,
    firmware: l.firmware,
    iomem: flat(l.iomem),
    e820: l.e820.map((e) => ({ start: hx(e.start), end: hx(e.end), type: e.type })),
    bars: l.bars.map((b) => ({ device: b.device, bdf: b.bdf, bar: b.bar, start: hx(b.start), size: hx(b.size), bits: b.bits, prefetchable: b.prefetchable })),
  };
}

/** Say so when the QEMU or firmware that will run is not one the model was checked against, rather than guess silently. */
export function versionWarning(q: QemuProfile): string | undefined {
  const v = shortVersion(q.version);
  const fw = MODELLED[v];
  const models = Object.entries(MODELLED).map(([k, f]) => `QEMU ${k} with SeaBIOS ${f}`).join(' and ');
  if (!fw) return `the layout model was checked against ${models}; QEMU ${q.version} is predicted with the nearest model, and its layout may differ`;
  if (q.firmware && (q.firmware.name !== 'SeaBIOS' || q.firmware.version !== fw)) return `the layout model was checked against ${models}; this QEMU ${q.version} loads ${q.firmware.name} ${q.firmware.version}, predicted with the nearest model, whose layout may differ`;
  return undefined;
}

export function layoutReport(nodes: NodeModel[], opts: { agent: boolean; qemu: QemuProfile }): { layouts: NodeLayout[]; result: LayoutResult; warning?: string } {
  const layouts = nodes.map((n) => computeLayout(n, { agent: opts.agent, qemu: layoutQemu(opts.qemu) }));
  const warning = versionWarning(opts.qemu);
  return { layouts, warning, result: { nodes: layouts.map((l) => ({ ...layoutJson(l), ...(warning ? { warning } : {}) })) } };
}
