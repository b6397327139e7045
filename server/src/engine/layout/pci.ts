/**
 * PCI functions of a node and the addresses SeaBIOS 1.16.2 / 1.16.3 gives
 * their BARs (src/fw/pciinit.c: pci_bios_check_devices, pci_bios_map_devices):
 * every BAR becomes an entry aligned to its size (memory BARs at least 4 KiB),
 * bridge windows at least 2 MiB; entries are sorted by alignment, packed at
 * the top of the 32-bit window [pcimem_start, 0xfec00000), and when they do
 * not fit (1.16.3: also whenever there is RAM above 4 GiB and the CPU's
 * physical address bits are known) all 64-bit-capable entries move to a
 * 64-bit window: 1.16.2 right above RAM, 1.16.3 below the top of the CPU's
 * physical address space.
 * BAR sizes and the machines' built-in functions come from the real QEMU
 * (pci-catalog-7.2.json, pci-catalog-10.0.json, scripts/gen-pci-catalog.mjs).
 */
import catalog72 from './pci-catalog-7.2.json';
import catalog100 from './pci-catalog-10.0.json';
import { NodeModel, QDevice, prop } from '../model/model';
import { GiB, MiB, alignUp } from '../text/sizes';
import { Platform, G4 } from './platform';
import { sizeOf } from '../model/facts';
import { LayoutTarget, layoutTarget } from './versions';

interface CatRegion { bar: number; type: 'io' | 'mem'; prefetch: boolean; is64: boolean; size: number }
interface CatFn { slot?: number; function?: number; id: string; class: number; bridge?: boolean; regions: CatRegion[] }
type Catalog = { machines: { q35: CatFn[]; pc: CatFn[] }; devices: Record<string, CatFn> };
const CATALOGS: Record<LayoutTarget['catalog'], Catalog> = {
  '7.2': catalog72 as unknown as Catalog,
  '10.0': catalog100 as unknown as Catalog,
};

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
  /**
   * As `memfabric boot` adds them: memfabric's guest agent (virtio-serial-pci
   * on the root bus), then the topology's <guest disk> (virtio-blk-pci on the
   * root bus) when the node has one.
   */
  agent: boolean;
  target?: LayoutTarget;
}

/** Every PCI function of the node, with bus numbers as SeaBIOS assigns them. */
export function pciFunctions(node: NodeModel, plat: Platform, opts: PciOptions): PciFunction[] {
  const catalog = CATALOGS[(opts.target ?? layoutTarget()).catalog];
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
  if (opts.agent && node.bootDisk) specs.push({ driver: 'virtio-blk-pci', id: 'mfdisk', bus: rootBus, props: [] });
  // -drive if=virtio: QEMU adds a virtio-blk-pci after every -device.
  for (const d of argVal('drive')) if (/(^|,)if=virtio(,|$)/.test(d)) specs.push({ driver: 'virtio-blk-pci', bus: rootBus, props: [] });
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
      // "0x10", "10.1", and libvirt's "0x1.0x2"
      const m = /^(?:0x)?([0-9a-f]+)(?:\.(?:0x)?([0-7]))?$/i.exec(addr);
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
  /** Where the firmware put the 64-bit window, when it needed one ("PCI: 64:"; may be empty). */
  mem64?: { start: bigint; end: bigint };
  pcimemStart: bigint;
  /** Set when even the 32-bit-only entries do not fit (SeaBIOS panics). */
  exhausted32?: { need: bigint; start: bigint };
  /** SeaBIOS 1.16.3: the CPU physical address bits it accepted (0: none, 1.16.2 behaviour), and pci_pad_mem64. */
  firmwarePhysBits: number;
  padMem64: boolean;
}

/**
 * SeaBIOS 1.16.3 physbits() (src/fw/paravirt.c): CPUID 0x80000008 phys-bits
 * of a 64-bit CPU with PAE, accepted under QEMU only when >= 41, or 36/39 on
 * GenuineIntel, or 40 on AuthenticAMD (TCG's default 40 bits on an Intel
 * model is refused); a CPU without long mode: 36 with PAE, else 32.
 */
export function firmwarePhysBits(plat: Platform, target: LayoutTarget): number {
  if (!target.firmwarePhysBits) return 0;
  if (!(plat.pae && plat.longMode)) return plat.pae ? 36 : 32;
  const b = plat.physBits;
  const valid = b >= 41 || (plat.vendor === 'GenuineIntel' && (b === 36 || b === 39)) || (plat.vendor === 'AuthenticAMD' && b === 40);
  return valid ? b : 0;
}

/** The E820 entries SeaBIOS knows while it places BARs (what e820_is_used looks at). */
function firmwareKnownE820(plat: Platform): { start: bigint; end: bigint }[] {
  const out = [{ start: 0n, end: plat.below4g }];
  if (plat.above4g > 0n) out.push({ start: plat.above4gStart, end: plat.above4gStart + plat.above4g });
  if (plat.vendor === 'AuthenticAMD' && plat.physBits >= 40) out.push({ start: 0xfd00000000n, end: 1n << 40n });
  if (plat.base === 'q35') out.push({ start: 0xb0000000n, end: 0xc0000000n }, { start: 0xfed1c000n, end: 0xfed20000n });
  out.push({ start: 0xfffc0000n, end: G4 });
  return out;
}

/** Run SeaBIOS's allocator; fills in every BAR's and bridge window's start. */
export function allocate(fns: PciFunction[], plat: Platform, target: LayoutTarget = layoutTarget()): Allocation {
  const PCIMEM_END = 0xfec00000n;
  let pcimemStart: bigint;
  if (plat.base === 'q35') pcimemStart = 0xc0000000n;
  else pcimemStart = plat.below4g <= 0x80000000n ? 0x80000000n : plat.below4g <= 0xc0000000n ? 0xc0000000n : plat.below4g;
  // RamSizeOver4G: the end of the highest RAM entry above 4 GiB, less 4 GiB (after an AMD relocation: 1 TiB + RAM - 4 GiB).
  const ramSizeOver4G = plat.above4g > 0n ? plat.above4gStart + plat.above4g - G4 : 0n;
  const physBits = firmwarePhysBits(plat, target);
  const top = physBits ? 1n << BigInt(physBits > 46 ? 46 : physBits) : 0n;
  const pad = physBits >= 36 && plat.longMode && ramSizeOver4G > 0n;

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
      // QEMU's bridges all have 64-bit prefetchable windows.
      const is64 = type === 'pref' && l.every((e) => e.is64);
      // 1.16.3: a hotplug port's 64-bit prefetchable window is at least top >> 11.
      if (br.bridge!.hotplug && pad && is64 && type === 'pref') align = top >> 11n;
      let s = sum(l);
      if (align > s && br.bridge!.hotplug) s = align;
      if (!s) continue;
      const size = alignUp(s, align);
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
  if (pad || !fit32()) {
    const r64mem = root.mem.filter((e) => e.is64);
    const r64pref = root.pref.filter((e) => e.is64);
    root.mem = root.mem.filter((e) => !e.is64);
    root.pref = root.pref.filter((e) => !e.is64);
    if (!fit32()) exhausted32 = { need: sum(root.mem) + sum(root.pref), start: pcimemStart };
    const sumMem = sum(r64mem);
    const sumPref = sum(r64pref);
    let memBase = plat.reservedMemoryEnd > G4 + ramSizeOver4G ? plat.reservedMemoryEnd : G4 + ramSizeOver4G;
    if (top) {
      let size = alignUp(sumMem, GiB) + alignUp(sumPref, GiB);
      if (pad) size = alignUp(size, top >> 3n);
      if (size <= top && memBase < top - size) memBase = top - size;
      if (firmwareKnownE820(plat).some((e) => memBase < e.end && e.start < memBase + size)) memBase -= size;
    }
    memBase = alignUp(alignUp(memBase, alignOf(r64mem)), GiB);
    const prefBase = alignUp(alignUp(memBase + sumMem, alignOf(r64pref)), GiB);
    mem64 = { start: memBase, end: alignUp(prefBase + sumPref, GiB) };
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
  return { mem64, pcimemStart, exhausted32, firmwarePhysBits: physBits, padMem64: pad };

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
