/**
 * The machine model: one per node of a cluster, whatever the input format.
 * Every value keeps the source text it was read from (an MStr), so any rule
 * can point at the exact characters a user must change.
 */
import { MStr, Span } from '../text/source';
import { SizeResult } from '../text/sizes';
import { KeyVal } from '../syntax/qemu-args';
import type { Fix, RelatedInfo } from '../diagnostics';

export type InputKind = 'topology' | 'libvirt' | 'qemu';

/** A size-typed value, parsed the way the QEMU option it sits in parses it. */
export interface SizeValue {
  m: MStr;
  parsed: SizeResult;
  /** What QEMU says when it cannot parse it (the text after "qemu-system-x86_64: OPTION: "). */
  qemuError: string;
  /** Where the value is, for messages: "-object memory-backend-file size". */
  what: string;
}

export interface Prop {
  key: string;
  keySpan: Span;
  value: MStr;
  implied: boolean;
  bare: boolean;
}

/** An -object. */
export interface QObject {
  qomType: string;
  typeM: MStr;
  id?: MStr;
  props: Prop[];
  /** The option's whole value, for ranges that cover "the object". */
  m: MStr;
  option: MStr;
  json: boolean;
}

/** A -device. */
export interface QDevice {
  driver: string;
  driverM: MStr;
  id?: MStr;
  props: Prop[];
  m: MStr;
  option: MStr;
  json: boolean;
}

export interface MemoryBackend {
  obj: QObject;
  id: string;
  idM: MStr;
  size?: SizeValue;
  memPath?: MStr;
  share?: Prop;
  align?: SizeValue;
  pmem?: Prop;
  prealloc?: Prop;
  discardData?: Prop;
  readonly?: Prop;
  /** memory-backend-file offset= (QEMU 8.1 and later): where in the file the backend's memory starts. */
  offset?: SizeValue;
}

export interface NumaNode {
  m: MStr;
  nodeid?: { n: number; m: MStr };
  memdev?: MStr;
  mem?: SizeValue;
  cpus?: MStr;
  props: Prop[];
}

export interface FixedMemoryWindow {
  index: number;
  /** targets.M in index order (sparse indexes kept as given). */
  targets: { index: number; m: MStr; keySpan: Span }[];
  size?: SizeValue;
  granularity?: SizeValue;
  /** Every key of this window, e.g. for "missing size" ranges. */
  keys: Prop[];
}

/** <window region="ram|pmem" dax="…">: a region to make in the guest on CXL window `window`. */
export interface CxlRegionRequest {
  window: number;
  /** The window element's name (related information, default range). */
  windowSpan: Span;
  type: MStr;
  dax?: MStr;
}

export interface GlobalProp {
  driver: string;
  property: string;
  value: MStr;
  /** "driver.property" as written. */
  keyM: MStr;
  m: MStr;
}

/** A kernel memmap= entry carving the guest's E820 map. */
export interface MemmapEntry {
  m: MStr;
  kind: 'ram' | 'acpi' | 'reserved' | 'pram' | 'convert' | 'exactmap' | 'limit';
  size?: bigint;
  start?: bigint;
  oldType?: bigint;
  newType?: bigint;
}

/** NVIDIA Grace EGM (libvirt RFC / NVIDIA QEMU acpi-egm-memory object). */
export interface EgmDevice {
  id: MStr;
  pciDev?: MStr;
  numaNode?: MStr;
  /** Where it was declared (libvirt <acpiEgmMemory>, topology <egm>, or -object). */
  m: MStr;
}

/**
 * libvirt 9.0 passes -no-acpi for this domain: an x86 or aarch64 domain without
 * <features><acpi/> (qemuBuildCommandLine; QEMU_CAPS_NO_ACPI is set for those
 * arches whatever the binary). Where that is, and the quick fix adding <acpi/>.
 */
export interface LibvirtNoAcpi {
  span: Span;
  related: RelatedInfo[];
  fixes: Fix[];
  /** The dimm/nvdimm memory devices of the domain (model= values), which need ACPI on x86. */
  memoryDevices: { span: Span; model: string }[];
}

export interface NodeModel {
  /** The document the node was read from (path or URI). */
  source: string;
  name: string;
  nameSpan: Span;
  kind: InputKind;
  /**
   * The guest architecture, which names the QEMU that runs the node
   * (qemu-system-<arch>) and so the profile it is judged with: "x86_64"
   * unless the command line runs qemu-system-aarch64 (…) or the domain says
   * <type arch='aarch64'>.
   */
  arch: string;
  /** Directory relative mem-path values are resolved against (QEMU: its cwd; we: the document's dir). */
  baseDir: string;
  /** The QEMU options the node is made of (what `plan` emits). */
  args: { name: string; option: MStr; value?: MStr }[];
  machine: { type?: MStr; props: Prop[] };
  memory: { m?: MStr; size?: SizeValue; maxmem?: SizeValue; slots?: { n: number; m: MStr } };
  smp?: { cpus: number; m: MStr };
  cpu?: { model: MStr; props: Prop[] };
  objects: QObject[];
  devices: QDevice[];
  backends: Map<string, MemoryBackend>;
  numa: NumaNode[];
  fmws: FixedMemoryWindow[];
  globals: GlobalProp[];
  kernel?: MStr;
  initrd?: MStr;
  append?: MStr;
  memmap: MemmapEntry[];
  egm: EgmDevice[];
  /** Set when libvirt starts the domain with -no-acpi (libvirt domains only). */
  libvirtNoAcpi?: LibvirtNoAcpi;
  /** Host paths libvirt opens itself before it starts QEMU (nvdimm, virtio-pmem <source><path>). */
  libvirtPaths?: LibvirtPath[];
  /** The libvirt connection URI the node runs on (topology host=); absent: this host. */
  host?: MStr;
  /**
   * The topology's <guest disk="…">: `memfabric boot` attaches the disk as a
   * virtio-blk-pci on the root bus, after the agent's virtio-serial-pci; the
   * layout "as boot runs the node" places it (and SeaBIOS's virtqueue for it).
   */
  bootDisk?: boolean;
  /**
   * The built-in guest the node boots (topology <guest kernel-version>):
   * "6.1", "6.12", or "default" (6.12 for QEMU 8.0 and later, else 6.1);
   * absent when the node boots a kernel of the user's or no guest at all.
   */
  guestKernel?: string;
  /** The regions the topology asks the guest to make (<window region= dax=>): engine/model/cxl-regions.ts. */
  cxlRegions?: CxlRegionRequest[];
  /** Every size-typed value, for the size-syntax rule. */
  sizes: SizeValue[];
  /** Props written on the wrong object or unknown to QEMU, found while building. */
  accel?: MStr;
}

export function prop(props: Prop[], key: string): Prop | undefined {
  for (let i = props.length - 1; i >= 0; i--) if (props[i].key === key) return props[i];
  return undefined;
}

export function propsFromKeyvals(kvs: KeyVal[]): Prop[] {
  return kvs.map((k) => ({ key: k.key, keySpan: k.keySpan, value: k.value, implied: k.implied, bare: k.bare }));
}

/** QEMU's boolean parsing (qapi_bool_parse): on/yes/true/y, off/no/false/n. */
export function qemuBool(v: string): boolean | undefined {
  if (['on', 'yes', 'true', 'y'].includes(v)) return true;
  if (['off', 'no', 'false', 'n'].includes(v)) return false;
  return undefined;
}

/** The architectures of the x86 PC machines (pc/q35, SeaBIOS, the e820 memory map). */
export const X86_ARCHES: readonly string[] = ['x86_64', 'i386'];

/**
 * The architecture a QEMU binary emulates, from its name: qemu-system-aarch64
 * is "aarch64"; qemu-kvm and other names are taken for x86_64.
 */
export function archOfBinary(word: string | undefined): string {
  const base = (word ?? '').slice((word ?? '').lastIndexOf('/') + 1);
  const m = /^qemu-system-([A-Za-z0-9_]+)$/.exec(base);
  return m ? m[1] : 'x86_64';
}

/** The bus a PCI device lands on without bus=: pci.0 on pc, pcie.0 on q35 and on the aarch64 virt machine. */
export function rootBus(node: Pick<NodeModel, 'arch' | 'machine'>): string {
  if (!X86_ARCHES.includes(node.arch)) return 'pcie.0';
  return machineBase(node.machine.type?.text) === 'q35' ? 'pcie.0' : 'pci.0';
}

export function machineBase(type: string | undefined): 'q35' | 'pc' | 'other' {
  if (type === undefined) return 'pc'; // qemu-system-x86_64's default machine is "pc"
  if (type === 'q35' || type.startsWith('pc-q35')) return 'q35';
  if (type === 'pc' || type.startsWith('pc-i440fx') || type === 'pc-1.0') return 'pc';
  return 'other';
}

/** A host path a libvirt domain names that libvirt itself opens (and labels) before starting QEMU. */
export interface LibvirtPath {
  path: MStr;
  /** The element, as the message names it: "<memory model='nvdimm'>". */
  what: string;
}
