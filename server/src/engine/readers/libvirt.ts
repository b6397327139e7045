/**
 * Reader for libvirt domain XML (libvirt 9.0): the memory elements, NUMA
 * cells, memory devices, <shmem>, <hostdev>, the EGM RFC's <acpiEgmMemory>,
 * and the QEMU options hidden in <qemu:commandline>, each kept with its range.
 * It turns the domain into the QEMU options libvirt would generate for the
 * parts that matter to memory (qemuBuildCommandLine), so one model serves all.
 */
import { Diagnostic } from '../diagnostics';
import { NodeInput } from '../model/build';
import { EgmDevice, LibvirtPath, X86_ARCHES, machineBase, rootBus } from '../model/model';
import { attr, child, childElements, textOf, XmlDocument, XmlElement } from '../syntax/xml';
import { MStr, Span } from '../text/source';
import { KiB, MiB, isPow2, parseLibvirtScaled } from '../text/sizes';
import { makeDiagnostic } from '../rules/rule';
import { qemuArgsFromWords, ReadResult } from './qemu-cmdline';
import { rule as xmlRule } from '../rules/xml-syntax';
import { rule as nsRule } from '../rules/libvirt-qemu-namespace';
import { rule as unitRule } from '../rules/libvirt-unit';
import { rule as shmemRule } from '../rules/libvirt-shmem';
import { rule as numaRule } from '../rules/libvirt-numa-memory';
import { rule as memoryRule } from '../rules/libvirt-memory';
import { rule as egmRule } from '../rules/egm-unsupported';
import { rule as slotRule } from '../rules/libvirt-passthrough-slot';
import { isPciDriver, libvirtRootSlots } from './libvirt-slots';
import { XmlAttr } from '../syntax/xml';
import { Rule } from '../rules/rule';
import * as cellRef from '../rules/libvirt-numa-cell-ref';
import * as numaCell from '../rules/libvirt-numa-cell';
import * as hugepages from '../rules/libvirt-hugepages';
import * as memDevice from '../rules/libvirt-memory-device';
import * as memHotplug from '../rules/libvirt-memory-hotplug';
import * as memAddress from '../rules/libvirt-memory-address';
import { memoryDevices, Report } from './libvirt-domain';

/** libvirt 9.0's own validation of memory, NUMA, hugepages, numatune and memory devices: one rule file each. */
const DOMAIN_CHECKS: { rule: Rule; checkDomain(dom: XmlElement, report: Report): void }[] = [numaCell, cellRef, hugepages, memDevice, memHotplug, memAddress];

export const QEMU_NS = 'http://libvirt.org/schemas/domain/qemu/1.0';

type Args = NodeInput['args'];

/** A synthetic option whose value characters map to `where`. */
function opt(args: Args, name: string, value: MStr | string, where: Span) {
  args.push({ name, option: MStr.synthetic(`-${name}`, where), value: typeof value === 'string' ? MStr.synthetic(value, where) : value });
}

/**
 * Build a value from literal pieces and source-mapped pieces, e.g.
 * ["memory-backend-ram,id=ram-node0,size=", sizeM] where sizeM maps into the XML.
 */
function compose(where: Span, ...parts: (string | MStr)[]): MStr {
  return MStr.concat(parts.map((p) => (typeof p === 'string' ? MStr.synthetic(p, where) : p)), where);
}

export function readLibvirtDomain(doc: XmlDocument, text: string, source: string, baseDir: string): ReadResult {
  const diagnostics: Diagnostic[] = [];
  for (const p of doc.problems) diagnostics.push(makeDiagnostic(xmlRule, { span: p.span, message: p.message }));
  const dom = doc.root;
  if (!dom || dom.local !== 'domain') return { nodes: [], diagnostics };
  const args: Args = [];
  const egm: EgmDevice[] = [];
  const libvirtPaths: LibvirtPath[] = [];

  /** Scaled value of an element with unit= (default KiB), as bytes; reports unit problems. */
  const scaled = (el: XmlElement | undefined, defaultScale = KiB, what = el?.local ?? ''): { bytes: bigint; m: MStr } | undefined => {
    if (!el) return undefined;
    const v = textOf(el);
    const u = attr(el, 'unit');
    // libvirt does not trim: '<memory> 4 </memory>' is refused like '1.5' (virStrToLong_ullp on the raw text).
    const raw = el.children.map((c) => (c.kind === 'text' ? c.value.text : '')).join('');
    const r = v.text !== '' && raw !== v.text ? ({ ok: false, detail: `Invalid value '${raw}'` } as const) : parseLibvirtScaled(v.text, u?.value.text, defaultScale);
    if (!r.ok) {
      const onUnit = r.detail.startsWith('unknown suffix');
      const spaced = raw !== v.text ? ' (libvirt does not strip spaces or line breaks around it)' : '';
      diagnostics.push(
        makeDiagnostic(unitRule, {
          span: onUnit && u ? u.valueSpan : spaced ? { start: el.startTagSpan.end, end: el.endTagSpan?.start ?? el.startTagSpan.end } : v.span(),
          message: onUnit
            ? `<${what}> unit '${u!.value.text}' is not a libvirt unit (b, KiB/K, MiB/M, GiB/G, TiB/T, … binary; KB, MB, GB, TB decimal). libvirt: "invalid argument: ${r.detail}"`
            : `<${what}> must hold a whole number of units, not '${raw}'${spaced}. libvirt: "XML error: Invalid value '${raw}' for element or attribute './${what}[1]'"`,
          fixes: spaced && /^[0-9]+$/.test(v.text) ? [{ title: `Remove the spaces around ${v.text}`, edits: [{ span: { start: el.startTagSpan.end, end: el.endTagSpan?.start ?? el.startTagSpan.end }, newText: v.text }] }] : undefined,
        }),
      );
      return undefined;
    }
    if (r.decimal && u) {
      const bin = u.value.text.replace(/[bB]$/, 'iB').replace(/^./, (c) => c.toUpperCase());
      diagnostics.push(
        makeDiagnostic(unitRule, {
          severity: 'warning',
          span: u.valueSpan,
          message: `unit='${u.value.text}' is decimal in libvirt: ${v.text} ${u.value.text} = ${r.bytes} bytes, not ${v.text} ${bin} (${BigInt(v.text) * (1n << (10n * BigInt('KMGTPE'.indexOf(bin[0].toUpperCase()) + 1)))} bytes)${defaultScale === 1n ? '.' : '; libvirt then rounds to whole MiB and the guest gets less memory than intended.'} Use unit='${bin}'.`,
          fixes: [{ title: `Use unit='${bin}'`, edits: [{ span: u.valueSpan, newText: bin }] }],
        }),
      );
    }
    return { bytes: r.bytes, m: v };
  };

  for (const c of DOMAIN_CHECKS) c.checkDomain(dom, (f) => diagnostics.push(makeDiagnostic(c.rule, f)));

  const nameEl = child(dom, 'name');
  const name = nameEl ? textOf(nameEl) : undefined;

  // Machine type and firmware/kernel.
  const os = child(dom, 'os');
  const type = os && child(os, 'type');
  const machineAttr = type && attr(type, 'machine');
  // Without arch=, libvirt takes the host's (memfabric's hosts are x86_64); it names qemu-system-<arch>.
  const archAttr = type && attr(type, 'arch');
  const domArch = archAttr?.value.text === 'i686' ? 'i386' : (archAttr?.value.text ?? 'x86_64');
  // libvirt's default machine: pc on x86 (libvirt 9.0), virt on aarch64.
  const defaultMachine = X86_ARCHES.includes(domArch) ? 'pc' : domArch === 'aarch64' ? 'virt' : undefined;
  if (machineAttr || defaultMachine) opt(args, 'machine', machineAttr ? machineAttr.value : defaultMachine!, machineAttr?.valueSpan ?? dom.nameSpan);
  const machineType = machineAttr?.value.text ?? defaultMachine ?? 'pc';
  for (const [tag, o] of [['kernel', 'kernel'], ['initrd', 'initrd'], ['cmdline', 'append']] as const) {
    const el = os && child(os, tag);
    if (el) opt(args, o, textOf(el), el.nameSpan);
  }

  // Memory: libvirt rounds to MiB (x86) and, with NUMA, replaces <memory> by the sum of the cells.
  const memEl = child(dom, 'memory');
  const mem = scaled(memEl, KiB, 'memory');
  const maxEl = child(dom, 'maxMemory');
  const max = scaled(maxEl, KiB, 'maxMemory');
  const cpu = child(dom, 'cpu');
  const numaEl = cpu && child(cpu, 'numa');
  const cells = numaEl ? childElements(numaEl, 'cell') : [];
  const devicesEl = child(dom, 'devices');
  const cellSizes: { bytes: bigint; m: MStr; el: XmlElement; id: string; cpus?: MStr }[] = [];
  for (const c of cells) {
    const ma = attr(c, 'memory');
    if (!ma) continue;
    const u = attr(c, 'unit');
    const r = parseLibvirtScaled(ma.value.text, u?.value.text, KiB);
    if (!r.ok) {
      diagnostics.push(makeDiagnostic(unitRule, { span: u && r.detail.startsWith('unknown') ? u.valueSpan : ma.valueSpan, message: `NUMA cell memory: ${r.detail}` }));
      continue;
    }
    cellSizes.push({ bytes: r.bytes, m: ma.value, el: c, id: attr(c, 'id')?.value.text ?? String(cellSizes.length), cpus: attr(c, 'cpus')?.value });
  }
  const roundMiB = (b: bigint) => ((b + MiB - 1n) / MiB) * MiB;
  let ramBytes = mem ? roundMiB(mem.bytes) : undefined;
  let ramWhere: MStr | undefined = mem?.m;
  if (cellSizes.length) {
    const sum = cellSizes.reduce((a, c) => a + roundMiB(c.bytes), 0n);
    /** Rewrite <memory> in its own unit, when the sum is a whole number of them. */
    const sumFix = (sum: bigint) => {
      const u = attr(memEl!, 'unit');
      const scale = u ? unitScale(u.value.text) : KiB;
      return sum % scale === 0n ? [{ title: `Set <memory> to ${sum / KiB} KiB`, edits: [{ span: mem!.m.span(), newText: String(sum / scale) }] }] : [];
    };
    // libvirt 9.0 counts every memory device in <memory> (virDomainDefPostParseMemory: cells + the <target><size>
    // of each <memory> device, dimm, nvdimm, virtio-mem (its size, not <requested>) and virtio-pmem alike); -m is
    // the cells'. <memory> equal to the cells alone is the initial memory and passes too.
    let devSum = 0n;
    const devSizes: { span: Span; kib: bigint; what: string }[] = [];
    for (const d of devicesEl ? childElements(devicesEl, 'memory') : []) {
      const t = child(d, 'target');
      const sz = t && child(t, 'size');
      const r = sz && parseLibvirtScaled(textOf(sz).text, attr(sz, 'unit')?.value.text, KiB);
      if (r && r.ok) {
        devSum += roundMiB(r.bytes);
        devSizes.push({ span: textOf(sz).span(), kib: r.bytes / KiB, what: attr(d, 'model')?.value.text ?? 'memory device' });
      }
    }
    if (mem && roundMiB(mem.bytes) !== sum && roundMiB(mem.bytes) !== sum + devSum) {
      const total = sum + devSum;
      diagnostics.push(
        makeDiagnostic(numaRule, {
          span: mem.m.span(),
          message: devSum
            ? `<memory> is ${mem.bytes / KiB} KiB but the NUMA cells add up to ${sum / KiB} KiB and the ${devSizes.length} memory device${devSizes.length === 1 ? '' : 's'} to ${devSum / KiB} KiB: libvirt silently replaces <memory> with cells + devices, ${total / KiB} KiB; the guest boots with the cells' ${sum / MiB} MiB and can reach ${total / MiB} MiB.`
            : `<memory> is ${mem.bytes / KiB} KiB but the NUMA cells add up to ${sum / KiB} KiB: libvirt silently replaces <memory> with the sum of the cells, so the guest gets ${sum / MiB} MiB.`,
          related: [
            ...cellSizes.map((c) => ({ span: c.m.span(), message: `cell ${c.id}: ${c.bytes / KiB} KiB` })),
            ...devSizes.map((d) => ({ span: d.span, message: `${d.what}: ${d.kib} KiB` })),
          ],
          fixes: sumFix(total),
        }),
      );
    }
    ramBytes = sum;
    ramWhere = ramWhere ?? cellSizes[0].m;
  }
  if (!cellSizes.length && !cells.length && (!memEl || mem?.bytes === 0n)) {
    diagnostics.push(
      makeDiagnostic(memoryRule, {
        span: memEl ? mem!.m.span() : dom.nameSpan,
        message: `The domain gives no memory size: ${memEl ? '<memory> is 0' : 'no <memory>'} and no NUMA cells. libvirt: "XML error: Memory size must be specified via <memory> or in the <numa> configuration"`,
      }),
    );
  }
  const arch = type && attr(type, 'arch')?.value.text;
  if (max && maxEl && !cells.length && (arch === undefined || arch === 'x86_64' || arch === 'i686')) {
    diagnostics.push(
      makeDiagnostic(memoryRule, {
        span: maxEl.nameSpan,
        message: `<maxMemory> turns on memory hotplug, which libvirt allows on x86 only with at least one NUMA cell (<cpu><numa><cell id='0' cpus='…' memory='${mem ? roundMiB(mem.bytes) / KiB : '…'}' unit='KiB'/>). libvirt: "unsupported configuration: At least one numa node has to be configured when enabling memory hotplug"`,
      }),
    );
  }
  if (ramBytes !== undefined && ramWhere) {
    const parts: MStr[] = [MStr.synthetic(`size=${ramBytes / KiB}K`, ramWhere.span())];
    if (max && maxEl) {
      parts.push(MStr.synthetic(',maxmem=', max.m.span()), MStr.synthetic(`${roundMiB(max.bytes) / KiB}K`, max.m.span()));
      const slots = attr(maxEl, 'slots');
      if (slots) parts.push(MStr.synthetic(',slots=', slots.valueSpan), slots.value);
    }
    opt(args, 'm', MStr.concat(parts), ramWhere.span());
  }

  const vcpu = child(dom, 'vcpu');
  if (vcpu) opt(args, 'smp', textOf(vcpu), vcpu.nameSpan);

  // EGM (the libvirt RFC): the NUMA cell an <acpiEgmMemory> names is backed by the host's EGM device,
  // "-object memory-backend-file,id=m0,mem-path=/dev/egm0,size=32G,share=on,prealloc=on".
  const egmEls = devicesEl ? childElements(devicesEl, 'acpiEgmMemory') : [];
  const egmOfCell = new Map<string, number>();
  egmEls.forEach((e, i) => {
    const n = child(e, 'numaNode');
    if (n && !egmOfCell.has(textOf(n).text)) egmOfCell.set(textOf(n).text, i);
  });
  cellSizes.forEach((c) => {
    const where = c.el.nameSpan;
    const egmIdx = egmOfCell.get(c.id);
    const memdev = egmIdx === undefined ? `ram-node${c.id}` : `m${c.id}`;
    if (egmIdx === undefined) opt(args, 'object', compose(where, `memory-backend-ram,id=ram-node${c.id},size=`, MStr.synthetic(`${roundMiB(c.bytes) / KiB}K`, c.m.span())), where);
    else opt(args, 'object', compose(where, `memory-backend-file,id=${memdev},mem-path=/dev/egm${egmIdx},size=`, MStr.synthetic(rfcSize(roundMiB(c.bytes)), c.m.span()), ',share=on,prealloc=on'), where);
    const cpus = c.cpus ? compose(where, ',cpus=', c.cpus) : MStr.synthetic('', where);
    opt(args, 'numa', MStr.concat([MStr.synthetic(`node,nodeid=${c.id}`, where), cpus, MStr.synthetic(`,memdev=${memdev}`, where)]), where);
  });

  const devices = child(dom, 'devices');
  let memIdx = 0;
  const memAliases = new Map(memoryDevices(dom).map((d) => [d.el, d.alias]));
  const memSeen = new Set<string>();
  if (devices) {
    let shmemIdx = 0;
    for (const d of childElements(devices)) {
      if (d.local === 'shmem') readShmem(d, shmemIdx++);
      else if (d.local === 'hostdev') readHostdev(d);
      else if (d.local === 'memory') readMemoryDevice(d);
      else if (d.local === 'acpiEgmMemory') readEgm(d);
    }
  }

  function aliasOf(el: XmlElement): MStr | undefined {
    const a = child(el, 'alias');
    return a ? attr(a, 'name')?.value : undefined;
  }

  function readShmem(el: XmlElement, idx: number) {
    const nameA = attr(el, 'name');
    const shName = nameA?.value.text ?? '';
    const model = child(el, 'model');
    const mtype = model && attr(model, 'type');
    const where = el.nameSpan;
    if (!mtype || mtype.value.text === 'ivshmem') {
      diagnostics.push(
        makeDiagnostic(shmemRule, {
          span: mtype?.valueSpan ?? where,
          message: `<shmem> ${mtype ? "model 'ivshmem'" : 'without <model type=…/>'} means the legacy ivshmem device, which QEMU removed in 4.0. libvirt: "unsupported configuration: ivshmem device is not supported with this QEMU binary". Use <model type='ivshmem-plain'/>.`,
          fixes: mtype ? [{ title: "Use model 'ivshmem-plain'", edits: [{ span: mtype.valueSpan, newText: 'ivshmem-plain' }] }] : [{ title: "Add <model type='ivshmem-plain'/>", edits: [{ span: { start: el.startTagSpan.end, end: el.startTagSpan.end }, newText: "\n      <model type='ivshmem-plain'/>" }] }],
        }),
      );
      return;
    }
    if (nameA && (shName.includes('/') || shName === '.' || shName === '..')) {
      const why = shName.includes('/') ? "cannot include '/' character" : `cannot be equal to '${shName}'`;
      diagnostics.push(makeDiagnostic(shmemRule, { span: nameA.valueSpan, message: `shmem name '${shName}' would be /dev/shm/${shName}, not a file of its own in /dev/shm. libvirt: "unsupported configuration: shmem name ${why}"` }));
      return;
    }
    const server = child(el, 'server');
    const sizeEl = child(el, 'size');
    if (mtype.value.text === 'ivshmem-doorbell') {
      // The memory comes from the ivshmem server's socket: not modelled here.
      if (!server) diagnostics.push(makeDiagnostic(shmemRule, { span: mtype.valueSpan, message: `An ivshmem-doorbell gets its memory and interrupts from an ivshmem server: add <server path='/var/lib/libvirt/shmem-${shName}-sock'/>. libvirt: "unsupported configuration: shmem model 'ivshmem-doorbell' is supported only with server option enabled"` }));
      if (sizeEl) diagnostics.push(makeDiagnostic(shmemRule, { span: sizeEl.nameSpan, message: `An ivshmem-doorbell's size is the size of the memory its server hands out: drop <size>. libvirt: "unsupported configuration: shmem model 'ivshmem-doorbell' does not support size setting"`, fixes: [{ title: 'Remove <size>', edits: [{ span: sizeEl.span, newText: '' }] }] }));
      return;
    }
    if (mtype.value.text !== 'ivshmem-plain') return;
    if (server) {
      diagnostics.push(makeDiagnostic(shmemRule, { span: server.nameSpan, message: `<server> belongs to ivshmem-doorbell; an ivshmem-plain maps /dev/shm/${shName} itself. libvirt: "unsupported configuration: shmem model 'ivshmem-plain' is supported only with server option disabled"` }));
      return;
    }
    // <shmem><size> without unit= is in BYTES (virDomainShmemDefParseXML scale 1), unlike <memory>.
    const sz = sizeEl ? scaled(sizeEl, 1n, 'size') : { bytes: 4n * MiB, m: MStr.synthetic('4M', where) };
    if (!sz) return;
    if (sizeEl && !attr(sizeEl, 'unit') && sz.bytes < MiB) {
      diagnostics.push(makeDiagnostic(shmemRule, { span: sz.m.span(), message: `<shmem><size> without unit= is in bytes (unlike <memory>): ${sz.bytes} bytes. libvirt: "XML error: shmem size must be at least 1 MiB (1024 KiB)". Add unit='M' (or 'G').`, fixes: [{ title: "Add unit='M'", edits: [{ span: { start: sizeEl.nameSpan.end, end: sizeEl.nameSpan.end }, newText: " unit='M'" }] }] }));
      return;
    }
    if (sz.bytes < MiB) {
      diagnostics.push(makeDiagnostic(shmemRule, { span: sz.m.span(), message: `shmem size ${sz.bytes} bytes is below 1 MiB. libvirt: "XML error: shmem size must be at least 1 MiB (1024 KiB)"` }));
      return;
    }
    if (!isPow2(sz.bytes)) {
      diagnostics.push(makeDiagnostic(shmemRule, { span: sz.m.span(), message: `shmem size ${sz.bytes} bytes is not a power of two (it becomes a PCI BAR). libvirt refuses at start (not at define): "XML error: shmem size must be a power of two"` }));
      return;
    }
    const alias = aliasOf(el)?.text ?? `shmem${idx}`;
    const pathM = nameA ? compose(nameA.valueSpan, '/dev/shm/', nameA.value) : MStr.synthetic('/dev/shm/shmem', where);
    opt(args, 'object', compose(where, `memory-backend-file,id=shmmem-${alias},mem-path=`, pathM, ',size=', MStr.synthetic(String(sz.bytes), sz.m.span()), ',share=on'), where);
    // libvirt always gives the device a PCI address on the root bus' side of the machine (on q35 behind a
    // pcie-to-pci-bridge, not modelled): pci.0 on pc, pcie.0 on q35. Never omit bus= (IVSHMEM_AUTOBUS_PXB).
    const bus = rootBus({ arch: domArch, machine: { type: MStr.synthetic(machineType, where), props: [] } });
    opt(args, 'device', compose(where, `ivshmem-plain,id=${alias},memdev=shmmem-${alias},bus=${bus}`), where);
  }

  function readHostdev(el: XmlElement) {
    if (attr(el, 'type')?.value.text !== 'pci') return;
    const alias = aliasOf(el);
    const src = child(el, 'source');
    const a = src && child(src, 'address');
    const hex = (n: string | undefined, w: number) => (n ? parseInt(n, n.startsWith('0x') ? 16 : 10).toString(16).padStart(w, '0') : '0'.repeat(w));
    const host = a ? `${hex(attr(a, 'domain')?.value.text, 4)}:${hex(attr(a, 'bus')?.value.text, 2)}:${hex(attr(a, 'slot')?.value.text, 2)}.${hex(attr(a, 'function')?.value.text, 1)}` : '0000:00:00.0';
    const parts: MStr[] = [MStr.synthetic(`vfio-pci,host=${host}`, el.nameSpan)];
    if (alias) parts.push(MStr.synthetic(',id=', alias.span()), alias);
    opt(args, 'device', MStr.concat(parts), el.nameSpan);
  }

  function readMemoryDevice(el: XmlElement) {
    const model = attr(el, 'model');
    const target = child(el, 'target');
    const size = target ? scaled(child(target, 'size'), KiB, 'size') : undefined;
    if (!model || !size) return;
    // Without <maxMemory> libvirt refuses every memory device (libvirt-memory-hotplug): no command line to model.
    if (!maxEl) return;
    const where = el.nameSpan;
    // libvirt's alias: the model and the index among the memory devices (nvdimm0, dimm1 …).
    const alias = memAliases.get(el) ?? `${model.value.text.replace('-', '')}${memIdx++}`;
    // Two devices in one slot: libvirt refuses the domain (libvirt-memory-address); model the first only.
    if (memSeen.has(alias)) return;
    memSeen.add(alias);
    const srcPath = child(el, 'source') && child(child(el, 'source')!, 'path');
    if (srcPath && (model.value.text === 'nvdimm' || model.value.text === 'virtio-pmem')) libvirtPaths.push({ path: textOf(srcPath), what: `<memory model='${model.value.text}'>` });
    const access = attr(el, 'access')?.value.text;
    const share = access === 'shared' ? ',share=on' : access === 'private' ? ',share=off' : '';
    const nodeEl = target && child(target, 'node');
    const node = nodeEl ? compose(nodeEl.nameSpan, ',node=', textOf(nodeEl)) : MStr.synthetic('', where);
    // libvirt rounds DIMM/NVDIMM sizes up to 2 MiB on x86.
    const bytes = ((size.bytes + 2n * MiB - 1n) / (2n * MiB)) * 2n * MiB;
    const sizeM = MStr.synthetic(`${bytes / KiB}K`, size.m.span());
    if (model.value.text === 'nvdimm' && srcPath) {
      opt(args, 'object', compose(where, `memory-backend-file,id=mem${alias},mem-path=`, textOf(srcPath), ',size=', sizeM, share), where);
      opt(args, 'device', MStr.concat([MStr.synthetic(`nvdimm,id=${alias},memdev=mem${alias}`, where), node]), where);
    } else if (model.value.text === 'dimm') {
      opt(args, 'object', compose(where, `memory-backend-ram,id=mem${alias},size=`, sizeM, share), where);
      opt(args, 'device', MStr.concat([MStr.synthetic(`pc-dimm,id=${alias},memdev=mem${alias}`, where), node]), where);
    } else if (model.value.text === 'virtio-mem') {
      // libvirt passes <size> (rounded up to the block size) as the backend, reserve=off, and the device's
      // block-size and requested-size in bytes; the PCI slot is libvirt's (not modelled).
      const blk = scaled(child(target!, 'block'), KiB, 'block');
      const req = scaled(child(target!, 'requested'), KiB, 'requested');
      const bb = blk && blk.bytes > 0n ? blk.bytes : 2n * MiB;
      const vbytes = ((size.bytes + bb - 1n) / bb) * bb;
      opt(args, 'object', compose(where, `memory-backend-ram,id=mem${alias},size=`, MStr.synthetic(`${vbytes / KiB}K`, size.m.span()), share, ',reserve=off'), where);
      const extra = [blk ? MStr.synthetic(`,block-size=${blk.bytes}`, blk.m.span()) : undefined, req ? MStr.synthetic(`,requested-size=${req.bytes}`, req.m.span()) : undefined].filter((x): x is MStr => !!x);
      opt(args, 'device', MStr.concat([MStr.synthetic(`virtio-mem-pci,id=${alias},memdev=mem${alias}`, where), node, ...extra]), where);
    } else if (model.value.text === 'virtio-pmem' && srcPath) {
      // virtio-pmem is shared unless said otherwise (libvirt refuses anything else: libvirt-memory-device).
      opt(args, 'object', compose(where, `memory-backend-file,id=mem${alias},mem-path=`, textOf(srcPath), ',size=', MStr.synthetic(`${size.bytes / KiB}K`, size.m.span()), share || ',share=on'), where);
      opt(args, 'device', MStr.concat([MStr.synthetic(`virtio-pmem-pci,id=${alias},memdev=mem${alias}`, where)]), where);
    }
  }

  function readEgm(el: XmlElement) {
    const alias = aliasOf(el);
    const pci = child(el, 'pciDev');
    const numa = child(el, 'numaNode');
    const id = alias ?? MStr.synthetic(`egm${egmEls.indexOf(el)}`, el.nameSpan);
    egm.push({ id, pciDev: pci ? textOf(pci) : undefined, numaNode: numa ? textOf(numa) : undefined, m: MStr.synthetic(el.name, el.nameSpan) });
    // The RFC's argv: "-object acpi-egm-memory,id=egm0,pci-dev=ua-hostdev0,node=0" (values map to the XML).
    const parts: (string | MStr)[] = ['acpi-egm-memory,id=', id];
    if (pci) parts.push(',pci-dev=', textOf(pci));
    if (numa) parts.push(',node=', textOf(numa));
    opt(args, 'object', compose(el.nameSpan, ...parts), el.nameSpan);
    diagnostics.push(
      makeDiagnostic(egmRule, {
        span: el.nameSpan,
        message:
          "<acpiEgmMemory> is from the libvirt EGM RFC (NVIDIA Grace, aarch64) and is in no libvirt release: libvirt 9.0's `virsh define` drops the element without a word (virt-xml-validate rejects it), and QEMU 7.2 has no acpi-egm-memory object. It needs NVIDIA's libvirt and QEMU builds.",
      }),
    );
  }

  // <qemu:commandline>: only a direct child of <domain> in the right namespace counts.
  const passArgs: XmlAttr[] = [];
  const cmdlines = collect(dom, (e) => e.local === 'commandline' && (e.prefix !== undefined || e.ns === QEMU_NS));
  for (const cl of cmdlines) {
    const okNs = cl.ns === QEMU_NS;
    const okPlace = cl.parent === dom;
    if (!okNs || !okPlace) {
      const declared = cl.prefix ? findDecl(cl, cl.prefix) : undefined;
      const fixes = !okNs && !declared && cl.prefix
        ? [{ title: `Declare xmlns:${cl.prefix} on <domain>`, edits: [{ span: { start: dom.nameSpan.end, end: dom.nameSpan.end }, newText: ` xmlns:${cl.prefix}='${QEMU_NS}'` }] }]
        : [];
      diagnostics.push(
        makeDiagnostic(nsRule, {
          span: cl.nameSpan,
          message: !okNs
            ? declared
              ? `The prefix '${cl.prefix}' is bound to '${declared}', not to ${QEMU_NS}: libvirt silently drops this <${cl.name}> and none of its ${childElements(cl, 'arg').length} arguments reach QEMU.`
              : `The prefix '${cl.prefix}' is not declared: without xmlns:${cl.prefix}='${QEMU_NS}' on <domain>, libvirt silently drops this <${cl.name}> and none of its ${childElements(cl, 'arg').length} arguments reach QEMU (virt-xml-validate: "Namespace prefix ${cl.prefix} on commandline is not defined").`
            : `<${cl.name}> must be a direct child of <domain>, not of <${cl.parent?.name}>: here libvirt silently drops it and none of its ${childElements(cl, 'arg').length} arguments reach QEMU (virt-xml-validate: "Element domain failed to validate content").`,
          fixes,
        }),
      );
      continue;
    }
    const words: MStr[] = [];
    for (const a of childElements(cl, 'arg')) {
      const v = attr(a, 'value');
      if (v) {
        words.push(v.value);
        passArgs.push(v);
      } else diagnostics.push(makeDiagnostic(nsRule, { span: a.nameSpan, message: `<${a.name}> without value=. libvirt: "No qemu command-line argument specified"` }));
    }
    args.push(...qemuArgsFromWords(words, diagnostics));
  }

  // (libvirt's slot assignment is modelled for the x86 machines, pc and q35.)
  if (X86_ARCHES.includes(domArch)) checkPassthroughSlots(passArgs, devices, machineBase(machineType) === 'q35', diagnostics);

  // Memory devices need ACPI; without <features><acpi/> libvirt 9.0 passes -no-acpi and QEMU 7.2 refuses
  // the device, on pc and q35 alike.
  const features = child(dom, 'features');
  const acpi = features && child(features, 'acpi');
  const osEl = os;
  const acpiFix = features
    ? { title: 'Add <acpi/> to <features>', edits: [{ span: { start: features.startTagSpan.end, end: features.startTagSpan.end }, newText: features.selfClosing ? '' : '\n    <acpi/>' }] }
    : osEl
      ? { title: 'Add <features><acpi/></features>', edits: [{ span: { start: osEl.span.end, end: osEl.span.end }, newText: '\n  <features>\n    <acpi/>\n  </features>' }] }
      : undefined;
  // Memory devices without ACPI (x86 only: aarch64's virt machine is not judged here), judged per QEMU
  // version by rules/libvirt-memory-device-acpi.ts.
  const acpiMemoryDevices = !acpi && devices && X86_ARCHES.includes(domArch)
    ? childElements(devices, 'memory').map((d) => attr(d, 'model')).filter((m): m is XmlAttr => m !== undefined && (m.value.text === 'nvdimm' || m.value.text === 'dimm')).map((m) => ({ span: m.valueSpan, model: m.value.text }))
    : [];

  // libvirt 9.0 passes -no-acpi for x86 and aarch64 domains without <acpi/> (QEMU 9.0 removed the option):
  // judged per QEMU version by rules/libvirt-no-acpi-option.ts.
  const libvirtNoAcpi =
    !acpi && (X86_ARCHES.includes(domArch) || domArch === 'aarch64')
      ? {
          span: features?.nameSpan ?? type?.nameSpan ?? os?.nameSpan ?? dom.nameSpan,
          related: [features ? { span: features.nameSpan, message: '<features> without <acpi/>' } : { span: (machineAttr ?? attr(dom, 'type'))?.valueSpan ?? dom.nameSpan, message: `machine ${machineType}: no <features>, so no ACPI` }],
          fixes: acpiFix && !(features && features.selfClosing) ? [acpiFix] : [],
          memoryDevices: acpiMemoryDevices,
        }
      : undefined;
  const nameSpan = name?.span() ?? dom.nameSpan;
  return {
    nodes: [{ source, name: name?.text || baseNameOf(source), nameSpan, kind: 'libvirt', arch: domArch, baseDir, args, egm, libvirtNoAcpi, libvirtPaths }],
    diagnostics,
  };
}

/**
 * Pass-through PCI devices without addr= against libvirt's automatic root-bus
 * slots (readers/libvirt-slots.ts): QEMU creates them first, so the libvirt
 * device at the same slot is the one QEMU refuses.
 */
function checkPassthroughSlots(words: XmlAttr[], devices: XmlElement | undefined, q35: boolean, diagnostics: Diagnostic[]) {
  const rootBus = q35 ? 'pcie.0' : 'pci.0';
  const builtin = q35 ? [0, 0x1f] : [0, 1];
  const used = new Set<number>(builtin);
  const pass: { a: XmlAttr; driver: string; hasBus: boolean; id: string }[] = [];
  for (let i = 0; i + 1 < words.length; i++) {
    if (!/^--?device$/.test(words[i].value.text)) continue;
    const a = words[i + 1];
    const v = a.value.text;
    // JSON -device options are created in command-line order with libvirt's own: not this case.
    if (v.startsWith('{')) continue;
    const parts = v.split(',');
    const driver = parts[0].startsWith('driver=') ? parts[0].slice(7) : parts[0];
    if (!isPciDriver(driver)) continue;
    const props = new Map(parts.slice(1).map((p) => [p.slice(0, p.indexOf('=') >>> 0), p.slice(p.indexOf('=') + 1)] as [string, string]));
    const bus = props.get('bus');
    if (bus !== undefined && bus !== rootBus) continue;
    const addr = props.get('addr');
    if (addr !== undefined) {
      const n = Number(addr.split('.')[0]);
      if (Number.isFinite(n)) used.add(n);
      continue;
    }
    // QEMU names the device with its id, "(null)" (glibc's printf of NULL) without one.
    pass.push({ a, driver, hasBus: bus !== undefined, id: props.get('id') ?? '(null)' });
  }
  if (!pass.length) return;
  const lv = libvirtRootSlots(devices, q35);
  const suggested = new Set<number>();
  const isFree = (s: number) => !lv.has(s) && !used.has(s) && !suggested.has(s);
  // The fix gives every pass-through device without addr= a slot of its own: with one fixed, the next
  // would move down to the slot it left.
  const fixFor = pass.map((p) => {
    let to = 0x10;
    while (to < 0x1f && !isFree(to)) to++;
    if (to >= 0x1f) for (to = 2; to < 0x1f && !isFree(to); to++);
    suggested.add(to);
    return { span: { start: p.a.valueSpan.end, end: p.a.valueSpan.end }, newText: `${p.hasBus ? '' : `,bus=${rootBus}`},addr=0x${to.toString(16)}` };
  });
  const fixTitle = (i: number) =>
    pass.length === 1 ? `Add ${fixFor[0].newText.slice(1)}` : `Give the ${pass.length} pass-through PCI devices without addr= slots of their own (${fixFor.map((f) => f.newText.replace(/.*addr=/, '')).join(', ')}); this one: ${fixFor[i].newText.slice(1)}`;
  pass.forEach((p, i) => {
    let slot = 0;
    while (slot < 32 && used.has(slot)) slot++;
    if (slot >= 32) return;
    used.add(slot);
    const there = lv.get(slot);
    if (!there) return;
    const words = `PCI: slot ${slot} function 0 not available for ${there.driver}, in use by ${p.driver},id=${p.id}`;
    diagnostics.push(
      makeDiagnostic(slotRule, {
        span: p.a.valueSpan,
        message: `${p.driver} has no addr=: QEMU creates the key=value -device options of <qemu:commandline> before libvirt's own (JSON) devices, so it takes the first free slot of ${rootBus}, slot ${slot}, which libvirt 9.0 assigned to ${there.what}; QEMU then refuses to start: "${words}". Give it a free slot, e.g. ${fixFor[i].newText.slice(1)}.`,
        related: [{ span: there.el ? there.el.nameSpan : p.a.valueSpan, message: `libvirt puts ${there.driver} at ${rootBus} slot 0x${slot.toString(16)}${there.el ? '' : ` (${there.what}; not in the XML)`}` }],
        fixes: [{ title: fixTitle(i), edits: fixFor }],
      }),
    );
  });
}

/** A size as the EGM RFC writes it: 32G, else M or K. */
function rfcSize(b: bigint): string {
  const G = 1024n * MiB;
  return b % G === 0n ? `${b / G}G` : b % MiB === 0n ? `${b / MiB}M` : `${b / KiB}K`;
}

function unitScale(u: string): bigint {
  return parseLibvirtScaled('1', u, KiB).ok ? (parseLibvirtScaled('1', u, KiB) as { bytes: bigint }).bytes : KiB;
}

function baseNameOf(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1).replace(/\.xml$/, '');
}

function collect(el: XmlElement, pred: (e: XmlElement) => boolean, out: XmlElement[] = []): XmlElement[] {
  for (const c of el.children) {
    if (c.kind !== 'element') continue;
    if (pred(c)) out.push(c);
    else collect(c, pred, out);
  }
  return out;
}

function findDecl(el: XmlElement | undefined, prefix: string): string | undefined {
  for (let e = el; e; e = e.parent) {
    const u = e.nsDecls.get(prefix);
    if (u !== undefined) return u;
  }
  return undefined;
}
