/**
 * Facts of a node's machine that more than one stage reads: the layout
 * (layout/) and the rules (rules/) both ask them, so they live with the model
 * rather than in either.
 */
import { NodeModel, Prop, SizeValue, prop, qemuBool } from './model';
import { MiB } from '../text/sizes';

/** The RAM size QEMU uses: -m (8 KiB aligned), or the machine default of 128 MiB. */
export function ramSize(node: NodeModel): bigint {
  const s = node.memory.size?.parsed;
  if (s?.ok && s.value > 0n) return (s.value + 8191n) & ~8191n;
  return 128n * MiB;
}

export function sizeOf(v: SizeValue | undefined): bigint | undefined {
  return v?.parsed.ok ? v.parsed.value : undefined;
}

export function isOn(p: Prop | undefined, dflt = false): boolean {
  if (!p) return dflt;
  return qemuBool(p.value.text) ?? dflt;
}

/** The machine's cxl=on. */
export function cxlOn(node: NodeModel): Prop | undefined {
  const p = prop(node.machine.props, 'cxl');
  return p && isOn(p) ? p : undefined;
}

