/**
 * The layout report shared by `memfabric layout --format json` and the
 * language server's memfabric/layout request: hex in lower case, `end`
 * inclusive as /proc/iomem prints it.
 */
import type { LayoutNode, LayoutResult } from '../../lsp/protocol';
import { NodeModel } from '../model/model';
import { IomemEntry, LAYOUT_QEMU_VERSION, NodeLayout, computeLayout } from './index';

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

/** Say so when the QEMU that will run is not the one the model is for, rather than guess silently. */
export function versionWarning(installed: string | undefined): string | undefined {
  return installed && !installed.startsWith(LAYOUT_QEMU_VERSION)
    ? `the layout model is for QEMU ${LAYOUT_QEMU_VERSION} with SeaBIOS 1.16.2; the installed qemu-system-x86_64 is ${installed}, whose layout may differ`
    : undefined;
}

export function layoutReport(nodes: NodeModel[], opts: { agent: boolean; installedQemu?: string }): { layouts: NodeLayout[]; result: LayoutResult; warning?: string } {
  const layouts = nodes.map((n) => computeLayout(n, { agent: opts.agent }));
  const warning = versionWarning(opts.installedQemu);
  return { layouts, warning, result: { nodes: layouts.map((l) => ({ ...layoutJson(l), ...(warning ? { warning } : {}) })) } };
}
