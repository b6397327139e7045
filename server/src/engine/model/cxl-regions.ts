/**
 * The regions a topology asks the guest to make (<window region="ram|pmem"
 * dax="…">), worked out from the machine model: which Type 3 devices sit
 * below the window's host bridges (following bus= up through switch and root
 * ports to the pxb-cxl), of which kind and capacity, and so the region's ways,
 * size and the guest commands that make it. Rules (rules/cxl-region-*.ts),
 * `plan` and `boot` read the same plan.
 */
import { CxlRegionRequest, NodeModel, prop, QDevice } from './model';

export interface RegionDevice {
  id: string;
  device: QDevice;
  /** The host bridge (pxb-cxl id) it sits below. */
  hostBridge: string;
  kind: 'persistent' | 'volatile';
  /** Capacity (its memdev's size), when known. */
  size?: bigint;
  /** Serial number (sn=), by which the guest's memdev is found (`cxl list -M` "serial"). */
  serial?: bigint;
}

export interface RegionPlan {
  request: CxlRegionRequest;
  type: 'ram' | 'pmem';
  dax?: 'devdax' | 'system-ram' | 'fsdax';
  /** The guest's root decoder for the window: decoder0.<window index> (cxl_acpi names them in CFMWS order). */
  decoder: string;
  /** The window's host bridges in target order. */
  targets: string[];
  /** Every Type 3 device below them, host bridge by host bridge. */
  devices: RegionDevice[];
  /** Interleave granularity of the window (QEMU's default 256). */
  granularity: bigint;
  windowSize?: bigint;
  /** ways × the smallest capacity, when every capacity is known. */
  size?: bigint;
}

function parseBig(text: string | undefined): bigint | undefined {
  if (!text) return undefined;
  try {
    return BigInt(text);
  } catch {
    return undefined;
  }
}

/** The pxb-cxl a device sits below (bus= up the tree), or undefined. */
function hostBridgeOf(node: NodeModel, d: QDevice): string | undefined {
  const byId = new Map(node.devices.filter((x) => x.id).map((x) => [x.id!.text, x]));
  let cur: QDevice | undefined = d;
  for (let hops = 0; cur && hops < 16; hops++) {
    if (cur.driver === 'pxb-cxl') return cur.id?.text;
    const bus: string | undefined = prop(cur.props, 'bus')?.value.text;
    cur = bus ? byId.get(bus) : undefined;
  }
  return undefined;
}

export function regionDevices(node: NodeModel): RegionDevice[] {
  const out: RegionDevice[] = [];
  for (const d of node.devices) {
    if (d.driver !== 'cxl-type3') continue;
    const volatileMem = prop(d.props, 'volatile-memdev')?.value.text;
    const persistentMem = (prop(d.props, 'persistent-memdev') ?? prop(d.props, 'memdev'))?.value.text;
    const mem = volatileMem ?? persistentMem;
    const hb = hostBridgeOf(node, d);
    if (!hb || !mem) continue;
    const size = node.backends.get(mem)?.size?.parsed;
    out.push({
      id: d.id?.text ?? '(no id)',
      device: d,
      hostBridge: hb,
      kind: volatileMem ? 'volatile' : 'persistent',
      ...(size?.ok ? { size: size.value } : {}),
      ...(parseBig(prop(d.props, 'sn')?.value.text) !== undefined ? { serial: parseBig(prop(d.props, 'sn')?.value.text) } : {}),
    });
  }
  return out;
}

export function regionPlans(node: NodeModel): RegionPlan[] {
  if (!node.cxlRegions?.length) return [];
  const all = regionDevices(node);
  return node.cxlRegions.map((request) => {
    const w = node.fmws.find((f) => f.index === request.window);
    const targets = w ? w.targets.map((t) => t.m.text) : [];
    const devices = targets.flatMap((hb) => all.filter((d) => d.hostBridge === hb));
    const g = w?.granularity?.parsed;
    const ws = w?.size?.parsed;
    const sizes = devices.map((d) => d.size);
    const min = sizes.length && sizes.every((s) => s !== undefined) ? sizes.reduce((a, b) => (a! < b! ? a : b)) : undefined;
    return {
      request,
      type: request.type.text as 'ram' | 'pmem',
      ...(request.dax ? { dax: request.dax.text as RegionPlan['dax'] } : {}),
      decoder: `decoder0.${request.window}`,
      targets,
      devices,
      granularity: g?.ok ? g.value : 256n,
      ...(ws?.ok ? { windowSize: ws.value } : {}),
      ...(min !== undefined ? { size: min * BigInt(devices.length) } : {}),
    };
  });
}
