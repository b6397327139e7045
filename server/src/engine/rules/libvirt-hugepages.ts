import { Rule } from './rule';
import { attr, child, childElements, XmlElement } from '../syntax/xml';
import { parseNodeset, Report } from '../readers/libvirt-domain';
import { KiB, parseLibvirtScaled } from '../text/sizes';

/**
 * Raised by the libvirt reader. <memoryBacking><hugepages> as libvirt 9.0
 * validates it at define:
 * - at most one <page> without nodeset= (the default page size), and no guest
 *   NUMA node in the nodesets of two pages (virDomainDefMemtuneValidate: "two
 *   master hugepages detected: A and B", "nodeset attribute of hugepages of
 *   sizes A and B intersect", sizes in KiB);
 * - hugepages are preallocated files: not with <allocation mode='ondemand'/>
 *   nor <source type='anonymous'/> (qemuValidateDomainDefMemory: "hugepages are
 *   not allowed with memory allocation ondemand", "hugepages are not allowed
 *   with anonymous memory source").
 * A nodeset naming a cell the guest lacks is libvirt-numa-cell-ref.
 */
export const rule: Rule = {
  code: 'libvirt-hugepages',
  severity: 'error',
  summary:
    "<memoryBacking><hugepages>: one <page> without nodeset at most, no guest node in two pages' nodesets, and not with <allocation mode='ondemand'/> or <source type='anonymous'/>; libvirt 9.0 refuses at define.",
  enforcedBy: 'two master hugepages detected: 2048 and 1048576 / nodeset attribute of hugepages of sizes 2048 and 1048576 intersect / hugepages are not allowed with memory allocation ondemand / hugepages are not allowed with anonymous memory source',
};

export function checkDomain(dom: XmlElement, report: Report): void {
  const mb = child(dom, 'memoryBacking');
  const hp = mb && child(mb, 'hugepages');
  if (!mb || !hp) return;
  const pages = childElements(hp, 'page').map((el) => {
    const s = attr(el, 'size');
    const r = s && parseLibvirtScaled(s.value.text, attr(el, 'unit')?.value.text, KiB);
    const ns = attr(el, 'nodeset');
    return { el, size: r && r.ok ? (r.bytes + KiB - 1n) / KiB : undefined, ns, set: ns ? parseNodeset(ns.value.text) : undefined };
  });
  for (let i = 0; i < pages.length; i++) {
    for (let j = 0; j < i; j++) {
      const a = pages[i];
      const b = pages[j];
      if (a.size === undefined || b.size === undefined) continue;
      if (!a.ns && !b.ns) {
        report({
          span: attr(a.el, 'size')!.valueSpan,
          message: `Two <page> elements without nodeset=: only one page size can be the default for the whole guest; give the others nodeset='…'. libvirt: "two master hugepages detected: ${a.size} and ${b.size}"`,
          related: [{ span: attr(b.el, 'size')!.valueSpan, message: `the first <page> without nodeset (${b.size} KiB)` }],
        });
        return;
      }
      if (a.set && b.set) {
        const both = [...a.set].filter((x) => b.set!.has(x));
        if (!both.length) continue;
        report({
          span: a.ns!.valueSpan,
          message: `Guest NUMA node${both.length > 1 ? 's' : ''} ${both.join(', ')} ${both.length > 1 ? 'are' : 'is'} in the nodesets of two <page> sizes (${b.size} and ${a.size} KiB): a node's memory comes from one page size. libvirt: "nodeset attribute of hugepages of sizes ${a.size} and ${b.size} intersect"`,
          related: [{ span: b.ns!.valueSpan, message: `nodeset of the ${b.size} KiB pages` }],
        });
        return;
      }
    }
  }
  const alloc = child(mb, 'allocation');
  const mode = alloc && attr(alloc, 'mode');
  if (mode?.value.text === 'ondemand') {
    report({
      span: mode.valueSpan,
      message: `Hugepages are preallocated (QEMU maps them with prealloc=on); allocation mode='ondemand' contradicts <hugepages>. libvirt: "unsupported configuration: hugepages are not allowed with memory allocation ondemand"`,
      related: [{ span: hp.nameSpan, message: '<hugepages>' }],
      fixes: [{ title: "Use mode='immediate'", edits: [{ span: mode.valueSpan, newText: 'immediate' }] }],
    });
    return;
  }
  const src = child(mb, 'source');
  const st = src && attr(src, 'type');
  if (st?.value.text === 'anonymous') {
    report({
      span: st.valueSpan,
      message: `Hugepages come from hugetlbfs files (or memfd): <source type='anonymous'/> is plain anonymous memory and cannot give them. libvirt: "unsupported configuration: hugepages are not allowed with anonymous memory source"`,
      related: [{ span: hp.nameSpan, message: '<hugepages>' }],
      fixes: [{ title: "Use type='file'", edits: [{ span: st.valueSpan, newText: 'file' }] }],
    });
  }
}
