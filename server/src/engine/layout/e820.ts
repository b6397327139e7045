/**
 * The E820 map: what QEMU passes (etc/e820), what SeaBIOS makes of it
 * (src/fw/paravirt.c, memmap.c, malloc.c: BIOS areas, the q35 MMCONFIG and
 * RCRB, the top of low RAM it keeps for its tables), and what Linux makes of
 * kernel memmap= options (arch/x86/kernel/e820.c). /sys/firmware/memmap shows
 * the firmware's map; /proc/iomem shows the kernel's. The same for QEMU 7.2 /
 * SeaBIOS 1.16.2 and QEMU 10.0 / SeaBIOS 1.16.3 (checked with both).
 */
import { MemmapEntry, NodeModel, prop, qemuBool } from '../model/model';
import { KiB, MiB } from '../text/sizes';
import { Platform, G4 } from './platform';
import { LayoutTarget, layoutTarget } from './versions';

export const E820_RAM = 1n;
export const E820_RESERVED = 2n;
export const E820_ACPI = 3n;
export const E820_NVS = 4n;
export const E820_UNUSABLE = 5n;
export const E820_PMEM = 7n;
export const E820_PRAM = 12n;
export const E820_SOFT_RESERVED = 0xefffffffn;

export interface E820Entry {
  start: bigint;
  /** Inclusive, as the guest prints it. */
  end: bigint;
  type: bigint;
}

/** The name /sys/firmware/memmap/N/type prints. */
export function firmwareTypeName(t: bigint): string {
  switch (t) {
    case E820_RAM:
      return 'System RAM';
    case E820_RESERVED:
      return 'Reserved';
    case E820_ACPI:
      return 'ACPI Tables';
    case E820_NVS:
      return 'ACPI Non-volatile Storage';
    case E820_UNUSABLE:
      return 'Unusable memory';
    case E820_PMEM:
      return 'Persistent Memory';
    case E820_PRAM:
      return 'Persistent Memory (legacy)';
    case E820_SOFT_RESERVED:
      return 'Soft Reserved';
    default:
      return 'Unknown E820 type';
  }
}

export interface HighTables {
  /** Bytes SeaBIOS keeps reserved at the top of low RAM (a multiple of 4 KiB). */
  size: bigint;
  /** What was allocated there, in order. */
  parts: { what: string; size: bigint }[];
  /** Devices SeaBIOS drives whose allocations there are not modelled: the size may then be too small. */
  unmodelled: string[];
}

/**
 * What SeaBIOS keeps of its 16 MiB ZoneHigh (src/malloc.c: malloc_preinit
 * reserves it at the top of the RAM below 4 GiB; malloc_prepboot gives back
 * the unused lowest part in whole pages, "Returned N bytes of ZoneHigh").
 * What stays is what was allocated there, each block at the top of the
 * highest free gap that holds it (alloc_new), in this order:
 *   - QEMU's ACPI tables (etc/acpi/tables), padded by QEMU to a multiple of
 *     128 KiB (ACPI_BUILD_TABLE_SIZE): 128 KiB for any machine memfabric
 *     writes (the tables are a few tens of KiB);
 *   - vmgenid's GUID page (4 KiB) and a small block with it (measured: a
 *     page plus room for two AHCI drives);
 *   - with -M nvdimm=on and memory slots, the NVDIMM DSM buffer (4 KiB);
 *   - per virtio-blk disk its virtqueue (struct vring_virtqueue, 10784 bytes,
 *     page aligned);
 *   - per drive on q35's ICH9 AHCI (the default CD-ROM included) its command
 *     list (1 KiB, 1 KiB aligned), FIS and command table (256 B each).
 * pc's PIIX IDE drives use none of it. The rule is the same for SeaBIOS
 * 1.16.2 and 1.16.3 (measured with both). Other devices SeaBIOS boots from
 * (NVMe, SCSI and USB disks, USB keyboards…) also allocate there; they are
 * listed in `unmodelled`.
 */
export function seabiosHighTables(node: NodeModel | undefined, p: Platform, opts: { bootDisk?: boolean } = {}): HighTables {
  // transient: freed again before the OS boots (its place still decides where later blocks went)
  const allocs: { what: string; size: bigint; align: bigint; transient?: boolean }[] = [{ what: 'ACPI tables', size: 128n * KiB, align: 64n }];
  const unmodelled: string[] = [];
  if (node) {
    const args = (name: string) => node.args.filter((a) => a.name === name).map((a) => a.value?.text ?? '');
    const noDefaults = args('nodefaults').length > 0;
    const kv = (v: string) => new Map(v.split(',').map((x): [string, string] => { const i = x.indexOf('='); return i < 0 ? [x, ''] : [x.slice(0, i), x.slice(i + 1)]; }));
    const drives = args('drive').map(kv);
    const devs = node.devices.map((d) => d.driver);
    if (devs.includes('vmgenid')) allocs.push({ what: 'vmgenid GUID', size: 4096n, align: 4096n }, { what: 'vmgenid (measured)', size: 64n, align: 64n });
    const nv = prop(node.machine.props, 'nvdimm');
    if (nv && qemuBool(nv.value.text || 'on') && (node.memory.slots?.n ?? 0) > 0) allocs.push({ what: 'NVDIMM DSM buffer', size: 4096n, align: 4096n });
    // USB controllers without a USB device (SeaBIOS's usb_setup, before the disks): each one's
    // schedule is allocated, the ports are found empty and it is all freed again. What it
    // held while the disks' queues were placed pushes them down (measured: QEMU 7.2 and 10.0).
    const usbDevice = devs.some((d) => /^usb-/.test(d)) || args('usbdevice').length > 0;
    const machineUsb = prop(node.machine.props, 'usb');
    const pcUsb = p.base !== 'q35' && (args('usb').length > 0 || (!!machineUsb && qemuBool(machineUsb.value.text || 'on') === true));
    for (const d of node.devices) {
      if (/^(qemu-xhci|nec-usb-xhci)$/.test(d.driver)) {
        // usb-xhci.c: the controller (76 B), the device context list of `slots`+1 entries,
        // the event ring segment, the command and event rings (struct xhci_ring, 288 B)
        const slots = BigInt(Number(prop(d.props, 'slots')?.value.text ?? 64) || 64);
        allocs.push(
          { what: `${d.driver} (freed)`, size: 76n, align: 16n, transient: !usbDevice },
          { what: `${d.driver} (freed)`, size: 8n * (slots + 1n), align: 64n, transient: !usbDevice },
          { what: `${d.driver} (freed)`, size: 16n, align: 64n, transient: !usbDevice },
          { what: `${d.driver} (freed)`, size: 288n, align: 256n, transient: !usbDevice },
          { what: `${d.driver} (freed)`, size: 288n, align: 256n, transient: !usbDevice },
        );
      }
    }
    const uhcis = [...node.devices.map((d) => d.driver).filter((d) => /^(piix3-usb-uhci|piix4-usb-uhci|ich9-usb-uhci[1-6])$/.test(d)), ...(pcUsb ? ['piix3-usb-uhci'] : [])];
    for (const d of uhcis) {
      // usb-uhci.c: the terminating TD (16 B), the frame list (4 KiB, page aligned), two pipes (28 B)
      allocs.push(
        { what: `${d} (freed)`, size: 16n, align: 16n, transient: !usbDevice },
        { what: `${d} (freed)`, size: 4096n, align: 4096n, transient: !usbDevice },
        { what: `${d} (freed)`, size: 28n, align: 16n, transient: !usbDevice },
        { what: `${d} (freed)`, size: 28n, align: 16n, transient: !usbDevice },
      );
    }
    if (usbDevice && (uhcis.length || node.devices.some((d) => /^(qemu-xhci|nec-usb-xhci)$/.test(d.driver)))) unmodelled.push('USB devices');
    for (const d of devs) if (/^(usb-ehci|ich9-usb-ehci[12]|pci-ohci)$/.test(d)) unmodelled.push(d);
    if (p.base === 'q35' && (args('usb').length > 0 || (!!machineUsb && qemuBool(machineUsb.value.text || 'on') === true))) unmodelled.push('-usb (ICH9 EHCI and UHCI)');
    // (bootDisk: the <guest disk> that `memfabric boot` attaches as a virtio-blk-pci)
    const vblk = drives.filter((d) => d.get('if') === 'virtio').length + devs.filter((d) => d === 'virtio-blk-pci' || d === 'virtio-blk').length + (opts.bootDisk ? 1 : 0);
    for (let i = 0; i < vblk; i++) allocs.push({ what: 'virtio-blk virtqueue', size: 10784n, align: 4096n });
    // Drives on the IDE controller (q35's default interface is ide = its AHCI).
    let ide = drives.filter((d) => (d.get('if') ?? 'ide') === 'ide').length;
    ide += ['hda', 'hdb', 'hdc', 'hdd', 'cdrom'].reduce((n, o) => n + args(o).length, 0);
    ide += devs.filter((d) => d === 'ide-hd' || d === 'ide-cd' || d === 'ide-drive').length;
    const at2 = drives.some((d) => (d.get('if') ?? 'ide') === 'ide' && d.get('index') === '2') || args('cdrom').length > 0 || args('hdc').length > 0;
    if (!noDefaults && !at2) ide++; // the default CD-ROM (index 2)
    if (p.base === 'q35') {
      for (let i = 0; i < ide; i++) allocs.push({ what: 'AHCI command list', size: 1024n, align: 1024n }, { what: 'AHCI FIS', size: 256n, align: 256n }, { what: 'AHCI command table', size: 256n, align: 256n });
    }
    for (const d of devs) if (/^(nvme|virtio-scsi(-pci)?|megasas(-gen2)?|lsi53c895a|lsi53c810|mptsas1068|pvscsi|am53c974|dc390|usb-storage|usb-bot|usb-uas|usb-kbd|usb-mouse|usb-tablet|usb-hub|ahci)$/.test(d)) unmodelled.push(d);
    for (const d of drives) if (['scsi', 'sd'].includes(d.get('if') ?? '')) unmodelled.push(`-drive if=${d.get('if')}`);
    if (args('usbdevice').length) unmodelled.push('-usbdevice');
  }
  // SeaBIOS's alloc_new: blocks ordered from the top; each new block goes to the top
  // of the first (highest) free gap above a block's data that holds it.
  const TOP = 16n * MiB;
  const blocks: { start: bigint; end: bigint; used: bigint; transient?: boolean }[] = [{ start: 0n, end: TOP, used: 0n }];
  for (const a of allocs) {
    for (let i = 0; i < blocks.length; i++) {
      const b = blocks[i];
      if (b.end < a.size) continue;
      const at = ((b.end - a.size) / a.align) * a.align;
      if (at >= b.start + b.used && at <= b.end) {
        blocks.splice(i, 0, { start: at, end: b.end, used: a.size, transient: a.transient });
        b.end = at;
        break;
      }
    }
  }
  // free(): a block's space goes to the block below it
  for (let i = blocks.length - 2; i >= 0; i--) {
    if (!blocks[i].transient) continue;
    blocks[i + 1].end = blocks[i].end;
    blocks.splice(i, 1);
  }
  const lowest = blocks[blocks.length - 1].end;
  const size = TOP - (lowest / 4096n) * 4096n;
  const parts: HighTables['parts'] = [];
  for (const a of allocs) {
    if (a.transient) continue;
    const last = parts[parts.length - 1];
    if (last && last.what === a.what) last.size += a.size;
    else parts.push({ what: a.what, size: a.size });
  }
  return { size, parts, unmodelled };
}

export function firmwareE820(p: Platform, _target: LayoutTarget = layoutTarget(), high: HighTables = seabiosHighTables(undefined, p)): E820Entry[] {
  const out: E820Entry[] = [];
  const add = (start: bigint, size: bigint, type: bigint) => size > 0n && out.push({ start, end: start + size - 1n, type });
  add(0n, 0x9fc00n, E820_RAM);
  add(0x9fc00n, 0x400n, E820_RESERVED);
  add(0xf0000n, 0x10000n, E820_RESERVED);
  const ht = high.size;
  if (p.below4g > MiB + ht) {
    add(MiB, p.below4g - ht - MiB, E820_RAM);
    add(p.below4g - ht, ht, E820_RESERVED);
  }
  if (p.base === 'q35') {
    add(0xb0000000n, 0x10000000n, E820_RESERVED); // MMCONFIG
    add(0xfed1c000n, 0x4000n, E820_RESERVED); // ICH9 root complex register block
  }
  add(0xfffc0000n, 0x40000n, E820_RESERVED); // BIOS
  add(p.above4gStart, p.above4g, E820_RAM);
  // QEMU 7.1+: the AMD HyperTransport hole below 1 TiB.
  if (p.vendor === 'AuthenticAMD' && p.physBits >= 40) add(0xfd00000000n, 0x300000000n, E820_RESERVED);
  return out.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
}

/**
 * Linux applies memmap= to its copy of the map, then sanitizes it: where
 * entries overlap the larger type wins, and equal neighbours merge.
 */
export function kernelE820(firmware: E820Entry[], memmap: MemmapEntry[]): E820Entry[] {
  let map = firmware.map((e) => ({ ...e }));
  for (const m of memmap) {
    if (m.kind === 'exactmap') map = [];
    else if (m.kind === 'limit' && m.size !== undefined) map = removeRange(map, m.size, (1n << 64n) - 1n, E820_RAM);
    else if (m.size !== undefined && m.start !== undefined) {
      const end = m.start + m.size - 1n;
      if (m.kind === 'convert') {
        if (m.oldType !== undefined && m.newType !== undefined) map = convertRange(map, m.start, end, m.oldType, m.newType);
      } else {
        const types: Record<string, bigint> = { ram: E820_RAM, acpi: E820_ACPI, reserved: E820_RESERVED, pram: E820_PRAM };
        const type = types[m.kind];
        if (type !== undefined) map.push({ start: m.start, end, type });
      }
    }
  }
  return sanitize(map);
}

function removeRange(map: E820Entry[], start: bigint, end: bigint, type: bigint): E820Entry[] {
  const out: E820Entry[] = [];
  for (const e of map) {
    if (e.type !== type || e.end < start || e.start > end) {
      out.push(e);
      continue;
    }
    if (e.start < start) out.push({ ...e, end: start - 1n });
    if (e.end > end) out.push({ ...e, start: end + 1n });
  }
  return out;
}

function convertRange(map: E820Entry[], start: bigint, end: bigint, from: bigint, to: bigint): E820Entry[] {
  const out: E820Entry[] = [];
  for (const e of map) {
    if (e.type !== from || e.end < start || e.start > end) {
      out.push(e);
      continue;
    }
    const s = e.start > start ? e.start : start;
    const t = e.end < end ? e.end : end;
    if (e.start < s) out.push({ ...e, end: s - 1n });
    out.push({ start: s, end: t, type: to });
    if (e.end > t) out.push({ ...e, start: t + 1n });
  }
  return out;
}

function sanitize(map: E820Entry[]): E820Entry[] {
  const points = [...new Set(map.flatMap((e) => [e.start, e.end + 1n]))].sort((a, b) => (a < b ? -1 : 1));
  const out: E820Entry[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const s = points[i];
    const t = points[i + 1] - 1n;
    let type = 0n;
    for (const e of map) if (e.start <= s && e.end >= t && e.type > type) type = e.type;
    if (!type) continue;
    const last = out[out.length - 1];
    if (last && last.type === type && last.end + 1n === s) last.end = t;
    else out.push({ start: s, end: t, type });
  }
  return out;
}

export { G4 };
