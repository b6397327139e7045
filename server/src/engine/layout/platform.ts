/**
 * The guest-physical platform QEMU builds for pc and q35 (hw/i386/pc.c
 * pc_memory_init, pc_q35.c / pc_piix.c, hw/pci-host/q35.c): the RAM split
 * around 4 GiB, the memory-hotplug region, the CXL host-register space and
 * fixed windows, the default 64-bit PCI hole, and what the firmware is told
 * (etc/reserved-memory-end). Every formula here was checked against
 * recordings of real guests under QEMU 7.2 (test/layout/configs) and against
 * SeaBIOS's own report under 7.2 and 10.0 (test/layout-firmware.test.ts);
 * where 8.2+ differs, LayoutTarget says so.
 */
import { NodeModel, machineBase, prop } from '../model/model';
import { GiB, MiB, alignUp } from '../text/sizes';
import { ramSize, sizeOf, cxlOn } from '../model/facts';
import { LayoutTarget, layoutTarget } from './versions';

export const G4 = 4n * GiB;

export interface Platform {
  base: 'q35' | 'pc' | 'other';
  ram: bigint;
  maxmem: bigint;
  slots: number;
  below4g: bigint;
  above4g: bigint;
  above4gStart: bigint;
  above4gEnd: bigint;
  vendor: 'AuthenticAMD' | 'GenuineIntel';
  physBits: number;
  /** The CPU model has long mode (x86-64) and PAE (what SeaBIOS 1.16.3 checks). */
  longMode: boolean;
  pae: boolean;
  /** Hotplug (device-memory) region, when maxmem > RAM. */
  deviceMemory?: { base: bigint; size: bigint };
  cxl?: {
    base: bigint;
    /** Component registers of each pxb-cxl (64 KiB each), in host-bridge creation order. */
    hostBridges: { id: string; busNr: number; base: bigint }[];
    windows: { index: number; base: bigint; size: bigint; targets: string[] }[];
    end: bigint;
  };
  /** Where QEMU puts the 64-bit PCI hole when the firmware placed no 64-bit BAR. */
  hole64DefaultStart: bigint;
  hole64Size: bigint;
  /** fw_cfg etc/reserved-memory-end (0 when QEMU does not write it: 7.2 and 10.0 only with maxmem). */
  reservedMemoryEnd: bigint;
  /** 32-bit PCI hole as QEMU describes it (pci-hole-start .. pci-hole-end). */
  pciHoleStart: bigint;
  pciHoleEnd: bigint;
}

/** CPU models without long mode (QEMU target/i386/cpu.c builtin_x86_defs). */
const MODELS_32BIT = /^(qemu32|kvm32|486|pentium|pentium2|pentium3|coreduo|n270|athlon)(-v\d+)?$/i;
const MODELS_NO_PAE = /^(486|pentium)(-v\d+)?$/i;

const INTEL_MODELS = /^(Skylake|Cascadelake|Cooperlake|Icelake|Haswell|Broadwell|SandyBridge|IvyBridge|Nehalem|Westmere|Penryn|Conroe|Snowridge|Denverton|SapphireRapids|core2duo|coreduo|kvm64|n270|pentium|486)/i;

export function platformOf(node: NodeModel, target: LayoutTarget = layoutTarget()): Platform {
  const base = machineBase(node.machine.type?.text);
  const ram = ramSize(node);
  const maxmem = (() => {
    const m = sizeOf(node.memory.maxmem);
    return m !== undefined && m > ram ? m : ram;
  })();
  const slots = node.memory.slots && node.memory.slots.n > 0 ? node.memory.slots.n : 0;
  const mrb = prop(node.machine.props, 'max-ram-below-4g');
  const mrb4g = mrb ? sizeOf(node.sizes.find((s) => s.m === mrb.value)) : undefined;

  let lowmem: bigint;
  if (base === 'q35') {
    lowmem = ram >= 0xb0000000n ? 0x80000000n : 0xb0000000n;
    if (mrb4g !== undefined && mrb4g < lowmem) lowmem = mrb4g;
  } else {
    lowmem = mrb4g ?? 0xe0000000n;
    if (ram >= lowmem && lowmem > 0xc0000000n) lowmem = 0xc0000000n;
  }
  const below4g = ram < lowmem ? ram : lowmem;
  const above4g = ram - below4g;

  const cpuModel = node.cpu?.model.text ?? 'qemu64';
  const vendorProp = node.cpu ? prop(node.cpu.props, 'vendor')?.value.text : undefined;
  const vendor = vendorProp === 'GenuineIntel' || (!vendorProp && INTEL_MODELS.test(cpuModel)) ? 'GenuineIntel' : 'AuthenticAMD';
  const longMode = !MODELS_32BIT.test(cpuModel);
  const pae = !MODELS_NO_PAE.test(cpuModel);
  const pbProp = node.cpu ? prop(node.cpu.props, 'phys-bits') : undefined;
  // TCG_PHYS_ADDR_BITS; a CPU without long mode has 36 (PSE36) or 32.
  const physBits = pbProp && /^\d+$/.test(pbProp.value.text) ? Number(pbProp.value.text) : longMode ? 40 : pae ? 36 : 32;

  const hole64Global = node.globals.find((g) => g.property === 'pci-hole64-size' && g.driver === (base === 'q35' ? 'q35-pcihost' : 'i440FX-pcihost'));
  const hole64Size = (hole64Global && sizeOf(node.sizes.find((s) => s.m === hole64Global.value))) ?? (base === 'q35' ? 32n * GiB : 2n * GiB);

  const compute = (above4gStart: bigint) => {
    const above4gEnd = above4gStart + above4g;
    let deviceMemory: Platform['deviceMemory'];
    if (maxmem > ram) {
      const dmBase = alignUp(above4gEnd, GiB);
      deviceMemory = { base: dmBase, size: maxmem - ram + GiB * BigInt(slots) };
    }
    let cxl: Platform['cxl'];
    if (cxlOn(node)) {
      // 7.2: has_reserved_memory is true for every pc/q35 machine type, so the
      // registers follow the (maybe empty) device-memory region; 8.2+ only when
      // there is one.
      const cxlBase = deviceMemory || target.cxlBaseAfterEmptyDeviceMemory ? alignUp(above4gEnd, GiB) + (deviceMemory?.size ?? 0n) : above4gEnd;
      const pxbs = node.devices.filter((d) => d.driver === 'pxb-cxl');
      // Registers are handed out in reverse creation order (QLIST_INSERT_HEAD in pxb_register_bus).
      const hostBridges = pxbs.map((d, i) => ({
        id: d.id?.text ?? '',
        busNr: Number(prop(d.props, 'bus_nr')?.value.text ?? 0),
        base: cxlBase + 0x10000n * BigInt(pxbs.length - 1 - i),
      }));
      let next = alignUp(cxlBase + MiB, 256n * MiB);
      const windows = node.fmws.map((w) => {
        const size = sizeOf(w.size) ?? 0n;
        const win = { index: w.index, base: next, size, targets: w.targets.map((t) => t.m.text) };
        next += size;
        return win;
      });
      cxl = { base: cxlBase, hostBridges, windows, end: windows.length ? next : cxlBase + MiB };
    }
    const start = cxl ? cxl.end : deviceMemory ? deviceMemory.base + deviceMemory.size : above4gEnd;
    const hole64DefaultStart = alignUp(start, GiB);
    // 7.2 and 10.0 write etc/reserved-memory-end only when there is a device-memory region.
    const reservedMemoryEnd = deviceMemory ? alignUp(cxl ? cxl.end : deviceMemory.base + deviceMemory.size, GiB) : 0n;
    return { above4gEnd, deviceMemory, cxl, hole64DefaultStart, reservedMemoryEnd };
  };
  let above4gStart = G4;
  let c = compute(above4gStart);
  // pc_max_used_gpa, before any relocation.
  let maxUsedGpa: bigint;
  if (target.maxUsedGpaByLongMode && !longMode) maxUsedGpa = (c.deviceMemory ? c.deviceMemory.base + c.deviceMemory.size : c.above4gEnd) - 1n;
  else if (!target.maxUsedGpaByLongMode && physBits <= 32) maxUsedGpa = (1n << BigInt(physBits)) - 1n;
  else maxUsedGpa = c.hole64DefaultStart + hole64Size - 1n;
  // AMD: keep RAM out of the HyperTransport hole below 1 TiB (machine types >= 7.1).
  if (vendor === 'AuthenticAMD' && maxUsedGpa >= 0xfd00000000n) {
    above4gStart = 1n << 40n;
    c = compute(above4gStart);
  }
  return {
    base,
    ram,
    maxmem,
    slots,
    below4g,
    above4g,
    above4gStart,
    ...c,
    vendor,
    physBits,
    longMode,
    pae,
    hole64Size,
    pciHoleStart: below4g,
    pciHoleEnd: 0xfec00000n,
  };
}
