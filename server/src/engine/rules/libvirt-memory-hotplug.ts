import { Rule } from './rule';
import { attr, child, XmlElement } from '../syntax/xml';
import { memoryDevices, numaCells, Report, sizeKiB } from '../readers/libvirt-domain';
import { KiB, parseLibvirtScaled } from '../text/sizes';

/**
 * Raised by the libvirt reader. <maxMemory> and the memory devices as libvirt
 * 9.0 checks them at define (virDomainDefPostParseMemory, then
 * qemuDomainDefValidateMemoryHotplug). Every <memory> device counts, virtio-mem
 * and virtio-pmem included:
 * - <maxMemory> needs slots= and slots= needs <maxMemory> ("both maximum
 *   memory size and memory slot count must be specified");
 * - memory devices need <maxMemory> ("cannot use/hotplug a memory device when
 *   domain 'maxMemory' is not defined");
 * - no more devices than slots ("memory device count 'N' exceeds slots count
 *   'M'"; with more dimm/nvdimm than slots, libvirt's slot assignment stops
 *   first: "failed to find an empty memory slot");
 * - the devices fit between the initial memory (the cells', or <memory> less
 *   the devices) and <maxMemory> ("memory device total size exceeds hotplug
 *   space", "maximum memory size must be equal or greater than the actual
 *   memory size");
 * - without NUMA cells the devices fit in <memory> ("Total size of memory
 *   devices exceeds the total memory size").
 */
export const rule: Rule = {
  code: 'libvirt-memory-hotplug',
  severity: 'error',
  summary:
    "Memory devices (dimm, nvdimm, virtio-mem, virtio-pmem) need <maxMemory slots=…>, one slot each, and room below maxMemory beside the initial memory; libvirt 9.0 refuses at define.",
  enforcedBy: "failed to find an empty memory slot / cannot use/hotplug a memory device when domain 'maxMemory' is not defined / memory device count '3' exceeds slots count '2' / memory device total size exceeds hotplug space / both maximum memory size and memory slot count must be specified",
};

export function checkDomain(dom: XmlElement, report: Report): void {
  const maxEl = child(dom, 'maxMemory');
  const max = sizeKiB(maxEl);
  const slotsA = maxEl && attr(maxEl, 'slots');
  const slots = slotsA && /^[0-9]+$/.test(slotsA.value.text) ? Number(slotsA.value.text) : undefined;
  const memEl = child(dom, 'memory');
  const mem = sizeKiB(memEl);
  const devs = memoryDevices(dom);
  const devKiB = devs.reduce((a, d) => a + (d.size?.kib ?? 0n), 0n);
  const cells = numaCells(dom);
  let cellKiB = 0n;
  for (const c of cells) {
    const m = attr(c, 'memory');
    const r = m && parseLibvirtScaled(m.value.text, attr(c, 'unit')?.value.text, KiB);
    if (r && r.ok) cellKiB += (r.bytes + KiB - 1n) / KiB;
  }
  const total = cellKiB > 0n ? cellKiB + devKiB : mem?.kib;
  const initial = cellKiB > 0n ? cellKiB : mem ? mem.kib - devKiB : undefined;

  if (cellKiB === 0n && mem && devKiB > mem.kib) {
    report({
      span: mem.m.span(),
      message: `<memory> ${mem.kib} KiB is the guest's total memory, memory devices included, and the devices alone have ${devKiB} KiB. libvirt: "XML error: Total size of memory devices exceeds the total memory size"`,
      related: devs.filter((d) => d.size).map((d) => ({ span: d.size!.m.span(), message: `${d.alias}: ${d.size!.kib} KiB` })),
    });
    return;
  }
  if (maxEl && max && (slots === undefined || slots === 0)) {
    report({
      span: slotsA?.valueSpan ?? maxEl.nameSpan,
      message: `<maxMemory> needs slots='N' (the number of memory devices the guest can take)${slotsA ? `, and slots='${slotsA.value.text}' is none` : ''}. libvirt: "XML error: both maximum memory size and memory slot count must be specified"`,
      fixes: slotsA ? [{ title: "Use slots='16'", edits: [{ span: slotsA.valueSpan, newText: '16' }] }] : [{ title: "Add slots='16'", edits: [{ span: { start: maxEl.nameSpan.end, end: maxEl.nameSpan.end }, newText: " slots='16'" }] }],
    });
    return;
  }
  if (max && total !== undefined && max.kib < total) {
    report({
      span: max.m.span(),
      message: `<maxMemory> ${max.kib} KiB is below the guest's memory, ${total} KiB (${cellKiB > 0n ? 'the NUMA cells' : '<memory>'}${devKiB > 0n && cellKiB > 0n ? ' and the memory devices' : ''}). libvirt: "XML error: maximum memory size must be equal or greater than the actual memory size"`,
    });
    return;
  }
  if (!devs.length) return;
  if (!max) {
    const d = devs[0];
    report({
      span: d.model?.valueSpan ?? d.el.nameSpan,
      message: `A <memory model='${d.model?.value.text ?? ''}'> device is memory hotplug: the domain needs <maxMemory slots='…' unit='…'>…</maxMemory> (the most memory the guest can reach, devices included). libvirt: "unsupported configuration: cannot use/hotplug a memory device when domain 'maxMemory' is not defined"`,
      fixes: memEl && total !== undefined
        ? [{ title: `Add <maxMemory slots='${Math.max(devs.length, 16)}'>`, edits: [{ span: { start: memEl.span.start, end: memEl.span.start }, newText: `<maxMemory slots='${Math.max(devs.length, 16)}' unit='KiB'>${total + devKiB}</maxMemory>\n  ` }] }]
        : [],
    });
    return;
  }
  if (cells.length === 0) return; // libvirt-memory: hotplug needs a NUMA cell on x86
  if (slots !== undefined) {
    // dimm and nvdimm get a memory slot when libvirt assigns addresses (before validation), the others a PCI slot.
    const slotted = devs.filter((d) => ['dimm', 'nvdimm'].includes(d.model?.value.text ?? 'dimm'));
    const over = slotted.length > slots ? slotted[slots] : devs.length > slots ? devs[slots] : undefined;
    if (over) {
      const words = slotted.length > slots ? 'internal error: failed to find an empty memory slot' : `unsupported configuration: memory device count '${devs.length}' exceeds slots count '${slots}'`;
      report({
        span: over.model?.valueSpan ?? over.el.nameSpan,
        message: `${devs.length} memory device${devs.length === 1 ? '' : 's'} and <maxMemory slots='${slots}'>: each memory device (virtio-mem and virtio-pmem too, in libvirt 9.0) takes a slot. libvirt: "${words}"`,
        related: [{ span: slotsA!.valueSpan, message: `slots='${slots}'` }],
        fixes: [{ title: `Use slots='${devs.length}'`, edits: [{ span: slotsA!.valueSpan, newText: String(devs.length) }] }],
      });
      return;
    }
  }
  if (initial !== undefined && devKiB > max.kib - initial) {
    report({
      span: max.m.span(),
      message: `The memory devices have ${devKiB} KiB, and <maxMemory> ${max.kib} KiB leaves ${max.kib - initial} KiB beside the initial ${initial} KiB. libvirt: "unsupported configuration: memory device total size exceeds hotplug space"`,
      related: devs.filter((d) => d.size).map((d) => ({ span: d.size!.m.span(), message: `${d.alias}: ${d.size!.kib} KiB` })),
    });
  }
}
