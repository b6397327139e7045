/**
 * Root-bus PCI slots of a libvirt 9.0 domain, as libvirt's automatic address
 * assignment gives them (src/qemu/qemu_domain_address.c), and where QEMU puts
 * the PCI devices of <qemu:commandline> that have no addr=.
 *
 * Checked with virsh 9.0 (embedded QEMU driver, domxml-to-native) and QEMU 7.2
 * and 10.0:
 * - q35: pcie.0 slot 0 is the host bridge, 0x1f the ICH9 functions; the primary
 *   video goes to slot 1, the pcie-root-ports libvirt adds fill the functions
 *   of the next slot (slot 1 without video), eight per slot. One root port per
 *   PCIe device, one for a pcie-to-pci-bridge when a conventional PCI device
 *   (e.g. rtl8139) needs one, and one spare.
 * - pc: pci.0 slot 0 is the host bridge, slot 1 PIIX3 (the default USB
 *   controller is 1.2); the primary video takes slot 2, then NICs, disks,
 *   controllers, the balloon … the next free slots in libvirt's order.
 * - libvirt writes its devices as JSON -device options and the <qemu:commandline>
 *   ones after them, but QEMU creates the key=value -device options first, in
 *   command-line order: a pass-through device without addr= takes the first
 *   free slot of the root bus (free of the machine's own devices and of earlier
 *   pass-through ones), and libvirt's device at that slot then fails.
 */
import { XmlElement, attr, child, childElements } from '../syntax/xml';
import { Span } from '../text/source';
import { MStr } from '../text/source';

export interface LibvirtSlot {
  slot: number;
  /** QEMU's driver name, as QEMU names it in its error. */
  driver: string;
  /** The element that stands for it, if the domain has one. */
  el?: XmlElement;
  what: string;
}

const hex = (n: number) => `0x${n.toString(16)}`;

function explicitRootSlot(el: XmlElement): number | 'elsewhere' | undefined {
  const a = child(el, 'address');
  if (!a) return undefined;
  if (attr(a, 'type')?.value.text !== 'pci') return 'elsewhere';
  const bus = Number(attr(a, 'bus')?.value.text ?? '0');
  const slot = Number(attr(a, 'slot')?.value.text ?? 'NaN');
  if (bus !== 0 || !Number.isFinite(slot)) return 'elsewhere';
  return slot;
}

interface Dev {
  el?: XmlElement;
  what: string;
  driver: string;
  /** A PCIe device (behind a root port on q35) or conventional PCI (behind the pcie-to-pci-bridge). */
  pcie: boolean;
}

/** The devices libvirt gives a PCI address, in the order it assigns them (primary video apart). */
function pciDevices(devices: XmlElement | undefined, q35: boolean): { video?: Dev; devs: Dev[]; fixed: LibvirtSlot[] } {
  const all = devices ? childElements(devices) : [];
  const of = (n: string) => all.filter((e) => e.local === n);
  const fixed: LibvirtSlot[] = [];
  const devs: Dev[] = [];
  const add = (d: Dev) => {
    if (d.el) {
      const s = explicitRootSlot(d.el);
      if (s === 'elsewhere') return;
      if (s !== undefined) {
        fixed.push({ slot: s, driver: d.driver, el: d.el, what: d.what });
        return;
      }
    }
    devs.push(d);
  };
  let video: Dev | undefined;
  const videos = of('video').filter((v) => child(v, 'model')?.attrs.find((a) => a.name === 'type')?.value.text !== 'none');
  if (videos.length) {
    const t = attr(child(videos[0], 'model') ?? videos[0], 'type')?.value.text ?? 'cirrus';
    video = { el: videos[0], what: `the <video> (${t})`, driver: t === 'vga' ? 'VGA' : t === 'cirrus' ? 'cirrus-vga' : t === 'qxl' ? 'qxl-vga' : t === 'virtio' ? 'virtio-vga' : t, pcie: false };
    const s = explicitRootSlot(videos[0]);
    if (s === 'elsewhere') video = undefined;
    else if (s !== undefined) {
      fixed.push({ slot: s, driver: video.driver, el: videos[0], what: video.what });
      video = undefined;
    }
  } else if (of('graphics').length) {
    video = { el: of('graphics')[0], what: 'the video device libvirt adds for <graphics> (cirrus)', driver: 'cirrus-vga', pcie: false };
  }
  for (const c of of('controller')) {
    const m = attr(c, 'model')?.value.text ?? '';
    if (attr(c, 'type')?.value.text === 'pci' && m !== 'pci-root' && m !== 'pcie-root' && m !== 'pcie-root-port') add({ el: c, what: `<controller type='pci' model='${m}'>`, driver: m, pcie: m !== 'pci-bridge' });
  }
  for (const f of of('filesystem')) add({ el: f, what: '<filesystem>', driver: 'virtio-9p-pci', pcie: true });
  for (const n of of('interface')) {
    const m = attr(child(n, 'model') ?? n, 'type')?.value.text ?? 'rtl8139';
    add({ el: n, what: `<interface> (${m})`, driver: m === 'virtio' ? 'virtio-net-pci' : m, pcie: m === 'virtio' || m === 'e1000e' });
  }
  for (const s of of('sound')) {
    const m = attr(s, 'model')?.value.text ?? '';
    if (m !== 'pcspk' && m !== 'usb') add({ el: s, what: `<sound model='${m}'>`, driver: m === 'ich6' || m === 'ich9' ? `intel-hda` : m, pcie: false });
  }
  for (const h of of('hostdev')) if (attr(h, 'type')?.value.text === 'pci') add({ el: h, what: '<hostdev> (vfio-pci)', driver: 'vfio-pci', pcie: true });
  for (const d of of('disk')) if (attr(child(d, 'target') ?? d, 'bus')?.value.text === 'virtio') add({ el: d, what: '<disk> on bus virtio', driver: 'virtio-blk-pci', pcie: true });
  const usb = of('controller').filter((c) => attr(c, 'type')?.value.text === 'usb');
  if (!usb.length) {
    if (q35) add({ what: 'the USB controller libvirt adds (qemu-xhci)', driver: 'qemu-xhci', pcie: true });
  } else {
    for (const c of usb) {
      const m = attr(c, 'model')?.value.text ?? (q35 ? 'qemu-xhci' : 'piix3-uhci');
      if (m !== 'none' && m !== 'piix3-uhci') add({ el: c, what: `<controller type='usb' model='${m}'>`, driver: m, pcie: m.includes('xhci') });
    }
  }
  for (const c of of('controller')) {
    const t = attr(c, 'type')?.value.text ?? '';
    if (t === 'scsi' || t === 'virtio-serial' || (t === 'sata' && !q35)) add({ el: c, what: `<controller type='${t}'>`, driver: t === 'virtio-serial' ? 'virtio-serial-pci' : t === 'sata' ? 'ahci' : 'lsi', pcie: t !== 'sata' });
  }
  const needsSerial = [...of('channel'), ...of('console')].some((c) => attr(child(c, 'target') ?? c, 'type')?.value.text === 'virtio');
  if (needsSerial && !of('controller').some((c) => attr(c, 'type')?.value.text === 'virtio-serial')) add({ what: 'the virtio-serial controller libvirt adds for a virtio channel', driver: 'virtio-serial-pci', pcie: true });
  for (const i of of('input')) if (attr(i, 'bus')?.value.text === 'virtio') add({ el: i, what: '<input bus=virtio>', driver: 'virtio-input-pci', pcie: true });
  const balloon = of('memballoon')[0];
  if (!balloon) add({ what: "the memory balloon libvirt adds (<memballoon model='virtio'>)", driver: 'virtio-balloon-pci', pcie: true });
  else if (attr(balloon, 'model')?.value.text !== 'none') add({ el: balloon, what: '<memballoon>', driver: 'virtio-balloon-pci', pcie: true });
  for (const r of of('rng')) add({ el: r, what: '<rng>', driver: 'virtio-rng-pci', pcie: true });
  for (const w of of('watchdog')) if (attr(w, 'model')?.value.text === 'i6300esb') add({ el: w, what: '<watchdog>', driver: 'i6300esb', pcie: false });
  for (const v of videos.slice(1)) add({ el: v, what: 'a secondary <video>', driver: 'virtio-gpu-pci', pcie: true });
  for (const s of of('shmem')) add({ el: s, what: '<shmem>', driver: attr(child(s, 'model') ?? s, 'type')?.value.text ?? 'ivshmem-plain', pcie: false });
  for (const v of of('vsock')) add({ el: v, what: '<vsock>', driver: 'vhost-vsock-pci', pcie: true });
  // Memory devices last (after vsock in qemuDomainAssignDevicePCISlots): virtio-mem and virtio-pmem are PCI devices.
  for (const m of of('memory')) {
    const model = attr(m, 'model')?.value.text;
    if (model === 'virtio-mem' || model === 'virtio-pmem') add({ el: m, what: `<memory model='${model}'>`, driver: `${model}-pci`, pcie: true });
  }
  return { video, devs, fixed };
}

/** The root-bus slots libvirt 9.0 assigns (slot → the device there, function 0 first). */
export function libvirtRootSlots(devices: XmlElement | undefined, q35: boolean): Map<number, LibvirtSlot> {
  const { video, devs, fixed } = pciDevices(devices, q35);
  const taken = new Map<number, LibvirtSlot>();
  for (const f of fixed) if (!taken.has(f.slot)) taken.set(f.slot, f);
  const builtin = q35 ? [0, 0x1f] : [0, 1];
  const free = (from: number) => {
    let s = from;
    while (s < 32 && (taken.has(s) || builtin.includes(s))) s++;
    return s;
  };
  if (video) {
    const s = free(q35 ? 1 : 2);
    taken.set(s, { slot: s, driver: video.driver, el: video.el, what: video.what });
  }
  if (q35) {
    const declared = devices ? childElements(devices, 'controller').filter((c) => attr(c, 'model')?.value.text === 'pcie-root-port') : [];
    const auto = declared.filter((c) => explicitRootSlot(c) === undefined);
    for (const c of declared) {
      const s = explicitRootSlot(c);
      if (typeof s === 'number' && !taken.has(s)) taken.set(s, { slot: s, driver: 'pcie-root-port', el: c, what: "<controller model='pcie-root-port'>" });
    }
    const needed = devs.filter((d) => d.pcie).length + (devs.some((d) => !d.pcie) ? 1 : 0);
    const count = declared.length ? Math.max(auto.length, needed - (declared.length - auto.length)) : needed ? needed + 1 : 0;
    for (let i = 0; i < count; i += 8) {
      const s = free(1);
      const el = auto[i];
      taken.set(s, { slot: s, driver: 'pcie-root-port', el, what: el ? "<controller model='pcie-root-port'>" : i === 0 ? 'the first pcie-root-port libvirt adds' : 'a pcie-root-port libvirt adds' });
    }
  } else {
    for (const d of devs) {
      const s = free(2);
      if (s >= 32) break;
      taken.set(s, { slot: s, driver: d.driver, el: d.el, what: d.what });
    }
  }
  return taken;
}

/** Devices of QEMU 7.2/10.0 that sit on a PCI bus (what a pass-through -device may be). */
export function isPciDriver(driver: string): boolean {
  return /-pci$|^(ivshmem-plain|ivshmem-doorbell|pxb|pxb-pcie|pxb-cxl|pci-bridge|pcie-pci-bridge|pcie-root-port|cxl-rp|e1000|e1000e|rtl8139|vmxnet3|nvme|VGA|cirrus-vga|qxl|qxl-vga|secondary-vga|bochs-display|intel-hda|ich9-intel-hda|AC97|ES1370|lsi|lsi53c895a|megasas|ahci|qemu-xhci|nec-usb-xhci|usb-ehci|ich9-usb-ehci1|i6300esb|edu|pci-testdev)$/.test(driver);
}

export interface PassthroughDevice {
  value: MStr;
  valueSpan: Span;
}

export { hex };
