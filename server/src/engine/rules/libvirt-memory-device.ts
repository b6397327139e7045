import { Rule } from './rule';
import { attr, child, XmlElement } from '../syntax/xml';
import { memoryDevices, numaCells, Report, sizeKiB } from '../readers/libvirt-domain';

/**
 * Raised by the libvirt reader. What libvirt 9.0 wants of each <memory
 * model=…> device, checked at define:
 * - virtio-mem (virDomainMemoryDefValidate): <block> a power of two and at
 *   least the host's THP size (2 MiB on x86), <requested> at most <size> and a
 *   multiple of <block> ("block size must be a power of two", "block size too
 *   small, must be at least 2048KiB", "requested size must be smaller than or
 *   equal to @size (NKiB)", "requested size must be an integer multiple of
 *   block size");
 * - nvdimm and virtio-pmem need <source><path> ("path is required for model
 *   'nvdimm'"), take no discard='yes'; virtio-pmem needs access='shared' and
 *   has no <target><node> ("shared access mode required for virtio-pmem
 *   device", "virtio-pmem does not support NUMA nodes");
 * - with guest NUMA cells, dimm, nvdimm and virtio-mem need <target><node>
 *   (qemuDomainDefValidateMemoryHotplugDevice: "target NUMA node needs to be
 *   specified for memory device").
 * The host's THP size is taken as 2 MiB (x86_64).
 */
export const rule: Rule = {
  code: 'libvirt-memory-device',
  severity: 'error',
  summary:
    "A <memory> device as libvirt 9.0 validates it at define: virtio-mem <block> a power of two ≥ 2 MiB, <requested> ≤ <size> and a multiple of <block>; nvdimm/virtio-pmem need <source><path>; virtio-pmem access='shared' (its default) and no <node>; with NUMA cells, dimm/nvdimm/virtio-mem need <target><node>.",
  enforcedBy: 'block size must be a power of two / requested size must be an integer multiple of block size / path is required for model \'nvdimm\' / shared access mode required for virtio-pmem device / target NUMA node needs to be specified for memory device',
};

const THP_KIB = 2048n;

export function checkDomain(dom: XmlElement, report: Report): void {
  const ncells = numaCells(dom).length;
  for (const d of memoryDevices(dom)) {
    const model = d.model?.value.text;
    if (!model || !d.target) continue;
    const t = d.target;
    const where = d.model!.valueSpan;
    if (model === 'virtio-mem') {
      const size = d.size;
      const blockEl = child(t, 'block');
      const block = sizeKiB(blockEl);
      const reqEl = child(t, 'requested');
      const req = sizeKiB(reqEl) ?? (reqEl ? undefined : { kib: 0n, m: undefined, el: undefined });
      if (size && req && req.m && req.kib > size.kib) {
        report({
          span: req.m.span(),
          message: `virtio-mem <requested> ${req.kib} KiB is more than its <size> ${size.kib} KiB: the guest can be given at most the whole device. libvirt: "requested size must be smaller than or equal to @size (${size.kib}KiB)"`,
          related: [{ span: size.m.span(), message: `<size> ${size.kib} KiB` }],
        });
        continue;
      }
      if (!blockEl || (block && (block.kib === 0n || (block.kib & (block.kib - 1n)) !== 0n))) {
        report({
          span: block ? block.m.span() : t.nameSpan,
          message: block
            ? `virtio-mem <block> ${block.kib} KiB is not a power of two. libvirt: "block size must be a power of two"`
            : `A virtio-mem device needs <block unit='MiB'>2</block> (its block size, a power of two, at least 2 MiB on x86): without it the block size is 0. libvirt: "block size must be a power of two"`,
          fixes: block ? [] : [{ title: "Add <block unit='MiB'>2</block>", edits: [{ span: { start: t.startTagSpan.end, end: t.startTagSpan.end }, newText: "\n        <block unit='MiB'>2</block>" }] }],
        });
        continue;
      }
      if (!block) continue;
      if (block.kib < THP_KIB) {
        report({
          span: block.m.span(),
          message: `virtio-mem <block> ${block.kib} KiB is below the host's transparent huge page size (2 MiB on x86_64). libvirt: "block size too small, must be at least ${THP_KIB}KiB"`,
          fixes: [{ title: "Use <block unit='MiB'>2</block>", edits: [{ span: { start: block.el.startTagSpan.start, end: (block.el.endTagSpan ?? block.el.startTagSpan).end }, newText: "<block unit='MiB'>2</block>" }] }],
        });
        continue;
      }
      if (req && req.m && req.kib % block.kib !== 0n) {
        report({
          span: req.m.span(),
          message: `virtio-mem <requested> ${req.kib} KiB is not a multiple of its <block> ${block.kib} KiB (the guest plugs whole blocks). libvirt: "requested size must be an integer multiple of block size"`,
          related: [{ span: block.m.span(), message: `<block> ${block.kib} KiB` }],
        });
        continue;
      }
    }
    if (model === 'nvdimm' || model === 'virtio-pmem') {
      const src = child(d.el, 'source');
      const path = src && child(src, 'path');
      if (!path) {
        report({
          span: where,
          message: `A <memory model='${model}'> is backed by a file: it needs <source><path>…</path></source>. libvirt: "path is required for model '${model}'"`,
        });
        continue;
      }
      const disc = attr(d.el, 'discard');
      if (disc?.value.text === 'yes') {
        report({
          span: disc.valueSpan,
          message: `discard='yes' frees the memory of a ${model} on guest release, which would lose the persistent contents. libvirt: "unsupported configuration: ${model === 'nvdimm' ? 'discard is not supported for nvdimms' : `discard is not supported for model '${model}'`}"`,
          fixes: [{ title: "Remove discard='yes'", edits: [{ span: { start: disc.span.start - 1, end: disc.span.end }, newText: '' }] }],
        });
        continue;
      }
    }
    if (model === 'virtio-pmem') {
      const acc = attr(d.el, 'access');
      // (Without access=, libvirt makes it shared: virDomainMemoryDefPostParse.)
      if (acc && acc.value.text !== 'shared') {
        report({
          span: acc.valueSpan,
          message: `A virtio-pmem device writes through to its file and needs access='shared' (the default), not '${acc.value.text}'. libvirt: "unsupported configuration: shared access mode required for virtio-pmem device"`,
          fixes: [{ title: "Use access='shared'", edits: [{ span: acc.valueSpan, newText: 'shared' }] }],
        });
        continue;
      }
      if (d.node && d.node.n < ncells) {
        const nodeEl = child(t, 'node')!;
        report({
          span: d.node.m.span(),
          message: `A virtio-pmem device is a PCI device and sits on no guest NUMA node: drop <node>. libvirt: "unsupported configuration: virtio-pmem does not support NUMA nodes"`,
          fixes: [{ title: 'Remove <node>', edits: [{ span: nodeEl.span, newText: '' }] }],
        });
        continue;
      }
    }
    if ((model === 'dimm' || model === 'nvdimm' || model === 'virtio-mem') && ncells > 0 && !child(t, 'node')) {
      report({
        span: where,
        message: `With guest NUMA cells, a <memory model='${model}'> must say which cell it belongs to: add <node>0</node> (0 … ${ncells - 1}) to its <target>. libvirt: "unsupported configuration: target NUMA node needs to be specified for memory device"`,
        fixes: [{ title: 'Add <node>0</node>', edits: [{ span: { start: t.startTagSpan.end, end: t.startTagSpan.end }, newText: '\n        <node>0</node>' }] }],
      });
    }
  }
}
