/**
 * PCI functions of a node and the addresses SeaBIOS 1.16.2 gives their BARs
 * (src/fw/pciinit.c: pci_bios_check_devices, pci_bios_map_devices): every
 * BAR becomes an entry aligned to its size (memory BARs at least 4 KiB),
 * bridge windows at least 2 MiB; entries are sorted by alignment, packed at
 * the top of the 32-bit window [pcimem_start, 0xfec00000), and only when they
 * do not fit all 64-bit-capable entries move above RAM.
 * BAR sizes and the machines' built-in functions come from the real QEMU
 * (pci-catalog-7.2.json, scripts/gen-pci-catalog.mjs).
 */
import catalogJson from './pci-catalog-7.2.json';
import { NodeModel, QDevice, prop } from '../model/model';
import { GiB, MiB, alignUp } from '../text/sizes';
import { Platform, G4 } from './platform';
import { sizeOf } from '../rules/util';

interface CatRegion { bar: number; type: 'io' | 'mem'; prefetch: boolean; is64: boolean; size: number }
interface CatFn { slot?: number; function?: number; id: string; class: number; bridge?: boolean; regions: CatRegion[] }
const catalog = catalogJson as unknown as { machines: { q35: CatFn[]; pc: CatFn[] }; devices: Record<string, CatFn> };

export interface PciBar {
  bar: number;
  size: bigint;
  is64: boolean;
  prefetch: boolean;
  rom: boolean;
  /** Where the guest's kernel has it (undefined: unassigned). */
  start?: bigint;
  /** Where the firmware put it, when the kernel moved or dropped it. */
  firmwareStart?: bigint;
}

export interface PciFunction {
  /** qdev id (or the driver name for built-in functions). */
  device: string;
  driver: string;
  bus: number;
  slot: number;
  fn: number;
  bars: PciBar[];
  bridge?: { secondary: number; hotplug: boolean; windows: { type: 'mem' | 'pref'; start?: bigint; size: bigint }[] };
  /** A root bus this function (a pxb) creates. */
  rootBus?: number;
  /** The model device it came from. */
  source?: QDevice;
}

export function bdf(f: PciFunction): string {
  return `0000:${f.bus.toString(16).padStart(2, '0')}:${f.slot.toString(16).padStart(2, '0')}.${f.fn}`;
}

/** Names of the machines' built-in functions (QEMU device types). */
const BUILTIN_NAMES: Record<string, string> = {
  '8086:29c0': 'mch',
  '1234:1111': 'VGA',
  '8086:10d3': 'e1000e',
  '8086:100e': 'e1000',
  '8086:2918': 'ICH9-LPC',
  '8086:2922': 'ich9-ahci',
  '8086:2930': 'ICH9-SMB',
  '8086:1237': 'i440FX',
  '8086:7000': 'PIIX3',
  '8086:7010': 'piix3-ide',
  '8086:7113': 'PIIX4_PM',
};

const BRIDGES = new Set(['pcie-root-port', 'cxl-rp', 'cxl-upstream', 'cxl-downstream']);
const HOTPLUG_PORTS = new Set(['pcie-root-port', 'cxl-rp', 'cxl-downstream']);

function barsOf(cat: CatFn): PciBar[] {
  return cat.regions.filter((r) => r.type === 'mem').map((r) => ({ bar: r.bar, size: BigInt(r.size), is64: r.is64, prefetch: r.prefetch, rom: r.bar === 6 }));
}

export interface PciOptions {
  /** memfabric's guest agent (virtio-serial-pci on the root bus), as `memfabric boot` adds it. */
  agent: boolean;
}

/** Every PCI function of the node, with bus numbers as SeaBIOS assigns them. */
export function pciFunctions(node: NodeModel, plat: Platform, opts: PciOptions): PciFunction[] {
  const base = plat.base === 'q35' ? 'q35' : 'pc';
  const rootBus = base === 'q35' ? 'pcie.0' : 'pci.0';
  const has = (name: string) => node.args.some((a) => a.name === name);
  const argVal = (name: string) => node.args.filter((a) => a.name === name).map((a) => a.value?.text ?? '');
  const noDefaults = has('nodefaults');
  const noVga = noDefaults || argVal('vga').includes('none');
  const noNic = noDefaults || argVal('nic').includes('none') || argVal('net').includes('none');
  const out: PciFunction[] = [];
  const used = new Map<number, Set<number>>(); // bus -> slots
  const take = (bus: number, slot: number) => {
    if (!used.has(bus)) used.set(bus, new Set());
    used.get(bus)!.add(slot);
  };
  for (const f of catalog.machines[base]) {
    if (f.class === 0x0300 && noVga) continue;
    if (f.class === 0x0200 && noNic) continue;
    const name = BUILTIN_NAMES[f.id] ?? f.id;
    out.push({ device: name, driver: name, bus: 0, slot: f.slot!, fn: f.function!, bars: barsOf(f) });
    take(0, f.slot!);
  }
  // Buses by name: the root bus, pxb root buses (their bus_nr), bridges' secondaries (numbered later).
  const busByName = new Map<string, { num?: number; owner?: PciFunction }>([[rootBus, { num: 0 }]]);
  const children = new Map<string, PciFunction[]>();
  interface Spec { driver: string; id?: string; bus?: string; props: QDevice['props']; source?: QDevice }
  const specs: Spec[] = node.devices.map((d) => ({ driver: d.driver, id: d.id?.text, bus: prop(d.props, 'bus')?.value.text, props: d.props, source: d }));
  // The agent's virtio-serial-pci, which `memfabric boot` adds on the root bus.
  if (opts.agent) specs.push({ driver: 'virtio-serial-pci', id: 'mfserial', bus: rootBus, props: [] });
  let lastRoot = rootBus;
  for (const d of specs) {
    const cat = catalog.devices[d.driver];
    if (!cat) continue;
    const busName = d.bus ?? (d.driver === 'pxb-cxl' || d.driver === 'pxb-pcie' ? rootBus : lastRoot);
    // ivshmem's BAR2 is its backend.
    const bars = barsOf(cat).map((b) => (d.source && d.driver === 'ivshmem-plain' && b.bar === 2 ? { ...b, size: ivshmemSize(node, d.source) ?? b.size } : b));
    const f: PciFunction = { device: d.id ?? d.driver, driver: d.driver, bus: -1, slot: -1, fn: 0, bars, source: d.source };
    const addr = prop(d.props, 'addr')?.value.text;
    if (addr) {
      const m = /^(?:0x)?([0-9a-f]+)(?:\.([0-7]))?$/i.exec(addr);
      if (m) {
        f.slot = parseInt(m[1], 16);
        f.fn = m[2] ? Number(m[2]) : 0;
      }
    }
    if (!children.has(busName)) children.set(busName, []);
    children.get(busName)!.push(f);
    if (d.driver === 'pxb-cxl' || d.driver === 'pxb-pcie') {
      f.rootBus = Number(prop(d.props, 'bus_nr')?.value.text ?? 0);
      if (d.id) busByName.set(d.id, { num: f.rootBus, owner: f });
      if (d.id) lastRoot = d.id;
    } else if (BRIDGES.has(d.driver)) {
      f.bridge = { secondary: -1, hotplug: HOTPLUG_PORTS.has(d.driver), windows: [] };
      if (d.id) busByName.set(d.id, { owner: f });
    }
    out.push(f);
  }
  // Slots: root bus after the built-ins, other buses from 0 (PCIe ports have one slot).
  for (const [name, fs] of children) {
    const info = busByName.get(name);
    for (const f of fs) {
      f.bus = info?.num ?? -2; // bridges' secondaries get their number below
      if (f.slot >= 0) continue;
      const key = name === rootBus ? 0 : -1 - out.indexOf(info?.owner ?? f);
      if (!used.has(key)) used.set(key, new Set());
      let s = 0;
      while (used.get(key)!.has(s)) s++;
      f.slot = s;
      used.get(key)!.add(s);
    }
  }
  // SeaBIOS numbers bridges' secondary buses depth first, from each root bus (pci_bios_init_bus).
  const numberBus = (name: string, num: number, counter: { n: number }) => {
    for (const f of [...(children.get(name) ?? [])].sort((a, b) => a.slot - b.slot || a.fn - b.fn)) {
      f.bus = num;
      if (!f.bridge) continue;
      f.bridge.secondary = ++counter.n;
      const own = [...busByName.entries()].find(([, v]) => v.owner === f)?.[0];
      if (own) numberBus(own, f.bridge.secondary, counter);
    }
  };
  numberBus(rootBus, 0, { n: 0 });
  for (const [name, v] of busByName) if (v.owner?.rootBus !== undefined) numberBus(name, v.num!, { n: v.num! });
  return out.filter((f) => f.bus >= 0).sort((a, b) => a.bus - b.bus || a.slot - b.slot || a.fn - b.fn);
}

function ivshmemSize(node: NodeModel, d: QDevice): bigint | undefined {
  const b = node.backends.get(prop(d.props, 'memdev')?.value.text ?? '');
  return sizeOf(b?.size);
}

interface Entry {
  f: PciFunction;
  /** BAR index, or -1 for a bridge window. */
  bar: number;
  size: bigint;
  align: bigint;
  pref: boolean;
  is64: boolean;
  window?: { type: 'mem' | 'pref'; secondary: number };
}

/** Insert keeping SeaBIOS's order: larger alignment first, then larger size; ties keep insertion order. */
function insertSorted(list: Entry[], e: Entry) {
  let i = 0;
  while (i < list.length && !(list[i].align < e.align || (list[i].align === e.align && list[i].size < e.size))) i++;
  list.splice(i, 0, e);
}

const sum = (l: Entry[]) => l.reduce((a, e) => a + e.size, 0n);
const alignOf = (l: Entry[]) => (l.length ? l[0].align : 1n);
const alignDown = (v: bigint, a: bigint) => (v / a) * a;

export interface Allocation {
  /** Where the firmware put the 64-bit window, when it needed one. */
  mem64?: { start: bigint; end: bigint };
  pcimemStart: bigint;
  /** Set when even the 32-bit-only entries do not fit (SeaBIOS panics). */
  exhausted32?: { need: bigint; start: bigint };
}

/** Run SeaBIOS's allocator; fills in every BAR's and bridge window's start. */
export function allocate(fns: PciFunction[], plat: Platform): Allocation {
  const PCIMEM_END = 0xfec00000n;
  let pcimemStart: bigint;
  if (plat.base === 'q35') pcimemStart = 0xc0000000n;
  else pcimemStart = plat.below4g <= 0x80000000n ? 0x80000000n : plat.below4g <= 0xc0000000n ? 0xc0000000n : plat.below4g;

  // Per-bus region lists; index 0 collects every root bus.
  const lists = new Map<number, { mem: Entry[]; pref: Entry[] }>();
  const secondaryOwner = new Map<number, PciFunction>();
  for (const f of fns) if (f.bridge) secondaryOwner.set(f.bridge.secondary, f);
  const listFor = (bus: number) => {
    const key = secondaryOwner.has(bus) ? bus : 0;
    if (!lists.has(key)) lists.set(key, { mem: [], pref: [] });
    return lists.get(key)!;
  };
  for (const f of fns) {
    const l = listFor(f.bus);
    for (const b of f.bars) {
      const size = b.size < 4096n ? 4096n : b.size;
      insertSorted(b.prefetch ? l.pref : l.mem, { f, bar: b.bar, size, align: size, pref: b.prefetch, is64: b.is64 && !b.rom });
    }
  }
  // Bridge windows, from the highest secondary bus down (pci_bios_check_devices).
  for (const sec of [...secondaryOwner.keys()].sort((a, b) => b - a)) {
    const br = secondaryOwner.get(sec)!;
    const child = lists.get(sec) ?? { mem: [], pref: [] };
    const parent = listFor(br.bus);
    for (const type of ['mem', 'pref'] as const) {
      const l = child[type];
      let align = 2n * MiB;
      if (alignOf(l) > align) align = alignOf(l);
      let s = sum(l);
      if (!s && br.bridge!.hotplug) s = align;
      if (!s) continue;
      const size = alignUp(s, align);
      const is64 = type === 'pref' && l.every((e) => e.is64);
      const w = { type, size, start: undefined as bigint | undefined };
      br.bridge!.windows.push(w);
      insertSorted(type === 'pref' ? parent.pref : parent.mem, { f: br, bar: -1, size, align, pref: type === 'pref', is64, window: { type, secondary: sec } });
    }
  }
  const root = lists.get(0) ?? { mem: [], pref: [] };
  const fit32 = (): boolean => {
    let rEnd = root.pref;
    let rStart = root.mem;
    if (alignOf(rStart) < alignOf(rEnd)) {
      rEnd = root.mem;
      rStart = root.pref;
    }
    const endBase = alignDown(PCIMEM_END - sum(rEnd), alignOf(rEnd));
    const startBase = alignDown(endBase - sum(rStart), alignOf(rStart));
    bases.set(rEnd, endBase);
    bases.set(rStart, startBase);
    return startBase >= pcimemStart && startBase <= PCIMEM_END;
  };
  const bases = new Map<Entry[], bigint>();
  let mem64: Allocation['mem64'];
  let exhausted32: Allocation['exhausted32'];
  const placeList = (l: Entry[], start: bigint) => {
    let addr = start;
    for (const e of l) {
      setStart(e, addr);
      addr += e.size;
    }
  };
  if (!fit32()) {
    const r64mem = root.mem.filter((e) => e.is64);
    const r64pref = root.pref.filter((e) => e.is64);
    root.mem = root.mem.filter((e) => !e.is64);
    root.pref = root.pref.filter((e) => !e.is64);
    if (!fit32()) exhausted32 = { need: sum(root.mem) + sum(root.pref), start: pcimemStart };
    let memBase = plat.reservedMemoryEnd > G4 + plat.above4g ? plat.reservedMemoryEnd : G4 + plat.above4g;
    memBase = alignUp(alignUp(memBase, alignOf(r64mem)), GiB);
    let prefBase = alignUp(alignUp(memBase + sum(r64mem), alignOf(r64pref)), GiB);
    mem64 = { start: memBase, end: alignUp(prefBase + sum(r64pref), GiB) };
    placeList(r64mem, memBase);
    placeList(r64pref, prefBase);
  }
  placeList(root.mem, bases.get(root.mem)!);
  placeList(root.pref, bases.get(root.pref)!);
  // Then each bus in order, from the base its bridge window got.
  for (const sec of [...secondaryOwner.keys()].sort((a, b) => a - b)) {
    const br = secondaryOwner.get(sec)!;
    const child = lists.get(sec);
    if (!child) continue;
    for (const type of ['mem', 'pref'] as const) {
      const w = br.bridge!.windows.find((x) => x.type === type);
      if (w?.start !== undefined) placeList(child[type], w.start);
    }
  }
  return { mem64, pcimemStart, exhausted32 };

  function setStart(e: Entry, addr: bigint) {
    if (e.bar >= 0) {
      const b = e.f.bars.find((x) => x.bar === e.bar);
      if (b) b.start = addr;
    } else {
      const w = e.f.bridge!.windows.find((x) => x.type === e.window!.type);
      if (w) w.start = addr;
    }
  }
}
