/**
 * From QEMU options (as read from any of the three inputs) to the machine
 * model. Building never reports: values that do not parse are kept with their
 * parse result, and the rules decide what to say about them.
 */
import { MStr, Span } from '../text/source';
import { parseQemuNumaMemSize, parseQemuRamSize, parseQemuSize } from '../text/sizes';
import { parseKeyvals } from '../syntax/qemu-args';
import {
  CxlRegionRequest, EgmDevice, FixedMemoryWindow, GlobalProp, InputKind, LibvirtNoAcpi, LibvirtPath, MemmapEntry, MemoryBackend, NodeModel, NumaNode, Prop, QDevice,
  QObject, SizeValue, prop, propsFromKeyvals,
} from './model';
import { parseMemmap } from './memmap';

export interface NodeInput {
  source: string;
  name: string;
  nameSpan: Span;
  kind: InputKind;
  /** The guest architecture (default x86_64): see NodeModel.arch. */
  arch?: string;
  baseDir: string;
  args: { name: string; option: MStr; value?: MStr }[];
  /** EGM devices declared outside QEMU options (libvirt/topology). */
  egm?: EgmDevice[];
  /** libvirt passes -no-acpi (readers/libvirt.ts). */
  libvirtNoAcpi?: LibvirtNoAcpi;
  libvirtPaths?: LibvirtPath[];
  /** The libvirt connection URI the node runs on (topology host=). */
  host?: MStr;
  /** The topology's <guest disk>: `memfabric boot` attaches it as a virtio disk. */
  bootDisk?: boolean;
  cxlRegions?: CxlRegionRequest[];
  guestKernel?: string;
}

function sizeValue(m: MStr, what: string, qemuError: string, ram = false): SizeValue {
  return { m, parsed: ram ? parseQemuRamSize(m.text) : parseQemuSize(m.text), qemuError, what };
}

/** JSON form of -object / -device: {"qom-type": ..., "id": ...}. Values map to the whole argument. */
function jsonProps(m: MStr): Prop[] | undefined {
  let obj: unknown;
  try {
    obj = JSON.parse(m.text);
  } catch {
    return undefined;
  }
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return undefined;
  const props: Prop[] = [];
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    // Find the key and value text in the source when we can, for tighter ranges.
    const keyAt = m.text.indexOf(JSON.stringify(k));
    const val = typeof v === 'string' ? v : typeof v === 'boolean' ? (v ? 'on' : 'off') : JSON.stringify(v);
    let valueM = MStr.synthetic(val, m.span());
    if (keyAt >= 0) {
      const after = m.text.indexOf(':', keyAt) + 1;
      const raw = JSON.stringify(v);
      const vAt = m.text.indexOf(raw, after);
      if (vAt >= 0) valueM = typeof v === 'string' ? m.slice(vAt + 1, vAt + raw.length - 1) : MStr.synthetic(val, m.span(vAt, vAt + raw.length));
    }
    props.push({ key: k, keySpan: keyAt >= 0 ? m.span(keyAt + 1, keyAt + 1 + k.length) : m.span(), value: valueM, implied: false, bare: false });
  }
  return props;
}

export function buildNode(input: NodeInput): NodeModel {
  const node: NodeModel = {
    source: input.source,
    name: input.name,
    nameSpan: input.nameSpan,
    kind: input.kind,
    arch: input.arch ?? 'x86_64',
    baseDir: input.baseDir,
    args: input.args,
    machine: { props: [] },
    memory: {},
    objects: [],
    devices: [],
    backends: new Map(),
    numa: [],
    fmws: [],
    globals: [],
    memmap: [],
    egm: [...(input.egm ?? [])],
    libvirtNoAcpi: input.libvirtNoAcpi,
    libvirtPaths: input.libvirtPaths,
    host: input.host,
    ...(input.bootDisk ? { bootDisk: true } : {}),
    ...(input.cxlRegions?.length ? { cxlRegions: input.cxlRegions } : {}),
    ...(input.guestKernel ? { guestKernel: input.guestKernel } : {}),
    sizes: [],
  };
  const fmwByIndex = new Map<number, FixedMemoryWindow>();

  for (const a of input.args) {
    const v = a.value;
    if (!v) continue;
    switch (a.name) {
      case 'machine':
      case 'M': {
        const kvs = propsFromKeyvals(parseKeyvals(v, 'type'));
        for (const p of kvs) {
          if (p.key === 'type') {
            node.machine.type = p.value;
            continue;
          }
          const fm = /^cxl-fmw\.(\d+)\.(.*)$/.exec(p.key);
          if (fm) {
            const idx = Number(fm[1]);
            let w = fmwByIndex.get(idx);
            if (!w) {
              w = { index: idx, targets: [], keys: [] };
              fmwByIndex.set(idx, w);
            }
            w.keys.push(p);
            const t = /^targets\.(\d+)$/.exec(fm[2]);
            if (t) w.targets.push({ index: Number(t[1]), m: p.value, keySpan: p.keySpan });
            else if (fm[2] === 'size') {
              w.size = sizeValue(p.value, `cxl-fmw.${idx}.size`, `Parameter 'cxl-fmw.${idx}.size' expects size`);
              node.sizes.push(w.size);
            } else if (fm[2] === 'interleave-granularity') {
              w.granularity = sizeValue(p.value, `cxl-fmw.${idx}.interleave-granularity`, `Parameter 'cxl-fmw.${idx}.interleave-granularity' expects size`);
              node.sizes.push(w.granularity);
            }
            continue;
          }
          node.machine.props.push(p);
          if (p.key === 'max-ram-below-4g') node.sizes.push(sizeValue(p.value, 'max-ram-below-4g', `Parameter 'max-ram-below-4g' expects a size value`));
        }
        break;
      }
      case 'm': {
        node.memory.m = v;
        for (const p of propsFromKeyvals(parseKeyvals(v, 'size'))) {
          if (p.key === 'size') {
            node.memory.size = sizeValue(p.value, '-m size', `Parameter 'size' expects a non-negative number below 2^64`, true);
            node.sizes.push(node.memory.size);
          } else if (p.key === 'maxmem') {
            node.memory.maxmem = sizeValue(p.value, '-m maxmem', `Parameter 'maxmem' expects a non-negative number below 2^64`);
            node.sizes.push(node.memory.maxmem);
          } else if (p.key === 'slots') {
            node.memory.slots = { n: /^\d+$/.test(p.value.text) ? Number(p.value.text) : NaN, m: p.value };
          }
        }
        break;
      }
      case 'smp': {
        const kvs = propsFromKeyvals(parseKeyvals(v, 'cpus'));
        const c = prop(kvs, 'cpus');
        node.smp = { cpus: c && /^\d+$/.test(c.value.text) ? Number(c.value.text) : 1, m: v };
        break;
      }
      case 'cpu': {
        const kvs = propsFromKeyvals(parseKeyvals(v, 'model'));
        node.cpu = { model: kvs[0]?.value ?? v, props: kvs.slice(1) };
        break;
      }
      case 'object': {
        const e = readEntity(v, 'qom-type');
        const obj: QObject = { qomType: e.type, typeM: e.typeM, id: e.id, props: e.props, m: v, option: a.option, json: e.json };
        node.objects.push(obj);
        if (obj.qomType.startsWith('memory-backend-')) addBackend(node, obj);
        // (A libvirt <acpiEgmMemory> is in node.egm already, read from the XML: not twice.)
        if (obj.qomType === 'acpi-egm-memory' && obj.id && !node.egm.some((e) => e.id.text === obj.id!.text)) {
          node.egm.push({ id: obj.id, pciDev: prop(obj.props, 'pci-dev')?.value, numaNode: prop(obj.props, 'node')?.value, m: v });
        }
        break;
      }
      case 'device': {
        const e = readEntity(v, 'driver');
        node.devices.push({ driver: e.type, driverM: e.typeM, id: e.id, props: e.props, m: v, option: a.option, json: e.json });
        break;
      }
      case 'numa': {
        const props = propsFromKeyvals(parseKeyvals(v, 'type'));
        const type = prop(props, 'type')?.value.text;
        if (type !== 'node') break;
        const nid = prop(props, 'nodeid');
        const n: NumaNode = {
          m: v,
          props,
          nodeid: nid ? { n: /^\d+$/.test(nid.value.text) ? Number(nid.value.text) : NaN, m: nid.value } : undefined,
          memdev: prop(props, 'memdev')?.value,
          cpus: prop(props, 'cpus')?.value,
        };
        const mem = prop(props, 'mem');
        if (mem) {
          n.mem = { m: mem.value, parsed: parseQemuNumaMemSize(mem.value.text), qemuError: `Parameter 'mem' expects a size value`, what: '-numa node mem' };
          node.sizes.push(n.mem);
        }
        node.numa.push(n);
        break;
      }
      case 'global': {
        for (const g of readGlobal(v)) {
          node.globals.push(g);
          if (g.property === 'pci-hole64-size') node.sizes.push(sizeValue(g.value, `-global ${g.driver}.pci-hole64-size`, `Parameter 'pci-hole64-size' expects a size value`));
        }
        break;
      }
      case 'kernel':
        node.kernel = v;
        break;
      case 'initrd':
        node.initrd = v;
        break;
      case 'append':
        node.append = v;
        node.memmap.push(...parseMemmap(v));
        break;
      case 'accel':
        node.accel = v;
        break;
    }
  }
  node.fmws = [...fmwByIndex.values()].sort((a, b) => a.index - b.index);
  for (const w of node.fmws) w.targets.sort((a, b) => a.index - b.index);
  return node;
}

/** -object / -device value, keyval or JSON: its type (qom-type / driver), id, and the other properties. */
function readEntity(v: MStr, typeKey: 'qom-type' | 'driver') {
  const json = v.text.trimStart().startsWith('{');
  const props = json ? jsonProps(v) ?? [] : propsFromKeyvals(parseKeyvals(v, typeKey));
  const t = prop(props, typeKey);
  return {
    json,
    type: t?.value.text ?? '',
    typeM: t?.value ?? v.slice(0, 0),
    id: prop(props, 'id')?.value,
    props: props.filter((p) => p.key !== typeKey && p.key !== 'id'),
  };
}

function addBackend(node: NodeModel, obj: QObject) {
  const id = obj.id?.text ?? '';
  const b: MemoryBackend = {
    obj,
    id,
    idM: obj.id ?? obj.typeM,
    memPath: prop(obj.props, 'mem-path')?.value,
    share: prop(obj.props, 'share'),
    pmem: prop(obj.props, 'pmem'),
    prealloc: prop(obj.props, 'prealloc'),
    discardData: prop(obj.props, 'discard-data'),
    readonly: prop(obj.props, 'readonly'),
  };
  const size = prop(obj.props, 'size');
  if (size) {
    b.size = sizeValue(size.value, `${obj.qomType} size`, `Parameter 'size' expects a size value`);
    node.sizes.push(b.size);
  }
  const align = prop(obj.props, 'align');
  if (align) {
    b.align = sizeValue(align.value, `${obj.qomType} align`, `Parameter 'align' expects a size value`);
    node.sizes.push(b.align);
  }
  const offset = prop(obj.props, 'offset');
  if (offset) {
    b.offset = sizeValue(offset.value, `${obj.qomType} offset`, `Parameter 'offset' expects a size value`);
    node.sizes.push(b.offset);
  }
  if (id && !node.backends.has(id)) node.backends.set(id, b);
}

/** -global driver.prop=value, or -global driver=d,property=p,value=v. */
function readGlobal(v: MStr): GlobalProp[] {
  const kvs = parseKeyvals(v);
  const d = kvs.find((k) => k.key === 'driver');
  if (d) {
    const p = kvs.find((k) => k.key === 'property');
    const val = kvs.find((k) => k.key === 'value');
    if (!p || !val) return [];
    return [{ driver: d.value.text, property: p.value.text, value: val.value, keyM: p.value, m: v }];
  }
  const eq = v.text.indexOf('=');
  const dot = v.text.indexOf('.');
  if (eq < 0 || dot < 0 || dot > eq) return [];
  return [{ driver: v.text.slice(0, dot), property: v.text.slice(dot + 1, eq), value: v.slice(eq + 1), keyM: v.slice(0, eq), m: v }];
}

export function devicesByDriver(node: NodeModel, ...drivers: string[]): QDevice[] {
  return node.devices.filter((d) => drivers.includes(d.driver));
}
