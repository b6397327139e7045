import { Rule } from './rule';
import { NodeModel } from '../model/model';
import { MStr, Span } from '../text/source';
import { cxlOn, devProp } from './util';
import { machineBase, prop, X86_ARCHES } from '../model/model';
import { closest } from './unknown-device-type';

/** Device properties that name a memory backend (-object id). */
const BACKEND_LINKS: Record<string, string[]> = {
  'ivshmem-plain': ['memdev'],
  'cxl-type3': ['memdev', 'lsa', 'persistent-memdev', 'volatile-memdev'],
  'pc-dimm': ['memdev'],
  nvdimm: ['memdev'],
  'virtio-mem-pci': ['memdev'],
  'virtio-mem': ['memdev'],
};

/** Buses that exist before any device is added. */
function builtinBuses(node: NodeModel): string[] {
  // The aarch64 virt machine: one PCI Express root bus (its IDE is not on a bus of its own).
  if (!X86_ARCHES.includes(node.arch)) return ['pcie.0'];
  const base = machineBase(node.machine.type?.text);
  return base === 'q35' ? ['pcie.0', 'ide.0', 'ide.1', 'ide.2', 'ide.3', 'ide.4', 'ide.5'] : ['pci.0', 'ide.0', 'ide.1', 'isa.0'];
}

function suggest(name: string, ids: string[], span: Span) {
  const near = closest(name, ids);
  return near ? { text: ` (did you mean '${near}'?)`, fixes: [{ title: `Change to ${near}`, edits: [{ span, newText: near }] }] } : { text: '', fixes: [] };
}

export const rule: Rule = {
  code: 'undefined-id',
  severity: 'error',
  summary:
    'Every id a configuration refers to must be defined: memdev/lsa backends (-object), bus= (a host bridge, root port or switch port -device, or the root bus), CXL window targets (a pxb-cxl), NUMA node numbers, and EGM\'s pciDev (the alias of a <hostdev>) and numaNode (a NUMA cell), which the libvirt EGM RFC\'s validation checks ("that referenced PCI devices exist, NUMA nodes are valid").',
  enforcedBy: "Device 'FAM' not found / Bus 'cxl.2' not found / Could not resolve CXLFM target cxl.9 / memdev=mem1 is ambiguous / acpi-egm-memory: Specified device must be a PCI device. / acpi-egm-memory: Specified node 1 is invalid. (NVIDIA's QEMU)",
  check({ node, report }) {
    const objIds = node.objects.map((o) => o.id?.text).filter((x): x is string => !!x);
    const backendIds = [...node.backends.keys()];
    const devIds = node.devices.map((d) => d.id?.text).filter((x): x is string => !!x);
    const busIds = [...builtinBuses(node), ...devIds];

    const refBackend = (v: MStr, qemuMsg: string) => {
      if (node.backends.has(v.text)) return;
      const s = suggest(v.text, backendIds, v.span());
      const isOtherObj = objIds.includes(v.text);
      report({
        span: v.span(),
        message: `No memory backend with id '${v.text}'${isOtherObj ? ' (that id is an -object, but not a memory-backend-*)' : ''}${s.text}. QEMU: "${qemuMsg}"`,
        fixes: s.fixes,
      });
    };

    for (const d of node.devices) {
      for (const key of BACKEND_LINKS[d.driver] ?? []) {
        const p = devProp(d, key);
        if (p) refBackend(p.value, `Device '${p.value.text}' not found`);
      }
      const bus = devProp(d, 'bus');
      if (bus && !busIds.includes(bus.value.text)) {
        const s = suggest(bus.value.text, busIds, bus.value.span());
        report({ span: bus.value.span(), message: `No bus '${bus.value.text}': a bus is the root bus (${builtinBuses(node)[0]}) or the id of a host bridge, root port or switch port${s.text}. QEMU: "Bus '${bus.value.text}' not found"`, fixes: s.fixes });
      }
    }
    for (const n of node.numa) {
      if (n.memdev && !node.backends.has(n.memdev.text)) {
        const s = suggest(n.memdev.text, backendIds, n.memdev.span());
        report({ span: n.memdev.span(), message: `No memory backend with id '${n.memdev.text}' for NUMA node${s.text}. QEMU: "memdev=${n.memdev.text} is ambiguous"`, fixes: s.fixes });
      }
    }
    const mb = prop(node.machine.props, 'memory-backend');
    if (mb) refBackend(mb.value, `Memory backend '${mb.value.text}' not found`);

    const pxbCxl = node.devices.filter((d) => d.driver === 'pxb-cxl' && d.id).map((d) => d.id!.text);
    // Without cxl=on QEMU never resolves window targets (see cxl-fmw-without-cxl-on).
    for (const w of cxlOn(node) ? node.fmws : []) {
      for (const t of w.targets) {
        if (pxbCxl.includes(t.m.text)) continue;
        const dev = node.devices.find((d) => d.id?.text === t.m.text);
        const s = suggest(t.m.text, pxbCxl, t.m.span());
        report({
          span: t.m.span(),
          message: `CXL window ${w.index} target '${t.m.text}' is not a CXL host bridge (pxb-cxl)${dev ? `: it is a ${dev.driver}` : ''}${s.text}. QEMU: "Could not resolve CXLFM target ${t.m.text}"`,
          fixes: s.fixes,
        });
      }
    }
    // NVIDIA Grace EGM (the libvirt RFC's <acpiEgmMemory>, NVIDIA QEMU's acpi-egm-memory): the RFC's
    // validation checks "that referenced PCI devices exist, NUMA nodes are valid"; NVIDIA's QEMU
    // (hw/acpi/acpi_egm_memory.c) exits with its own words on either.
    const hostdevs = node.devices.filter((d) => d.driver.startsWith('vfio-pci') && d.id).map((d) => d.id!.text);
    const numaIds = [...new Set(node.numa.map((n) => n.nodeid?.n).filter((n): n is number => n !== undefined))].sort((a, b) => a - b);
    const xml = node.kind === 'libvirt';
    const RFC = 'The libvirt EGM RFC checks "that referenced PCI devices exist, NUMA nodes are valid"';
    for (const e of node.egm) {
      const what = xml ? `<acpiEgmMemory> '${e.id.text}'` : `EGM ${e.id.text}`;
      if (e.pciDev && !hostdevs.includes(e.pciDev.text)) {
        const s = suggest(e.pciDev.text, hostdevs, e.pciDev.span());
        report({
          span: e.pciDev.span(),
          message: `${what}: ${xml ? `<pciDev> '${e.pciDev.text}' is not the alias of a <hostdev> of this domain` : `pci-dev '${e.pciDev.text}' is not a vfio-pci device (hostdev) of this node`}${s.text}. ${RFC}; NVIDIA's QEMU: "acpi-egm-memory: Specified device must be a PCI device."`,
          fixes: s.fixes,
        });
      }
      if (e.numaNode && /^\d+$/.test(e.numaNode.text) && !numaIds.includes(Number(e.numaNode.text))) {
        const have = numaIds.length ? `its NUMA ${xml ? 'cell' : 'node'}${numaIds.length > 1 ? 's are' : ' is'} ${numaIds.join(', ')}` : `it has no ${xml ? 'NUMA cell (<cpu><numa><cell>)' : '-numa node'}`;
        report({
          span: e.numaNode.span(),
          message: `${what}: ${xml ? `<numaNode> ${e.numaNode.text} is not a NUMA cell of the domain` : `NUMA node ${e.numaNode.text} is not defined`} (${have}). ${RFC}; NVIDIA's QEMU: "acpi-egm-memory: Specified node ${e.numaNode.text} is invalid."`,
        });
      }
    }
  },
};
