import { Rule } from './rule';
import { attr, child, childElements, XmlElement } from '../syntax/xml';
import { memoryDevices, nodeInNodeset, numaCells, parseNodeset, Report } from '../readers/libvirt-domain';

/**
 * Raised by the libvirt reader. Guest NUMA cells are numbered 0 … n-1 (see
 * libvirt-numa-cell); whatever names a cell must name one of those. libvirt
 * 9.0 refuses at define (parse or validation), each place with its own words:
 * - <memoryBacking><hugepages><page nodeset=…> (virDomainDefMemtuneValidate):
 *   "hugepages: node N not found";
 * - <cell><distances><sibling id=…> (virDomainNumaDefNodeDistanceParseXML):
 *   "'sibling_id N' does not refer to a valid cell within NUMA 'cell id M'";
 * - <numatune><memnode cellid=…> (virDomainNumatuneNodeParseXML): "Element
 *   'memnode' is invalid without any guest NUMA cells", "Argument 'cellid' in
 *   memnode element must correspond to existing guest's NUMA cell", "Multiple
 *   memnode elements with cellid N";
 * - <memory><target><node> (virDomainMemoryDefValidate): "can't add memory
 *   backend as guest has no NUMA nodes configured", "can't add memory backend
 *   for guest node 'N' as the guest has only 'M' NUMA nodes configured".
 */
export const rule: Rule = {
  code: 'libvirt-numa-cell-ref',
  severity: 'error',
  summary:
    'A hugepages nodeset, a distances <sibling id>, a <numatune><memnode cellid> or a memory device\'s <target><node> must name a guest NUMA cell the domain has (0 … cells-1); libvirt 9.0 refuses the domain at define.',
  enforcedBy: "hugepages: node 1 not found / 'sibling_id 2' does not refer to a valid cell within NUMA 'cell id 0' / Argument 'cellid' in memnode element must correspond to existing guest's NUMA cell / can't add memory backend for guest node '1' as the guest has only '1' NUMA nodes configured",
};

export function checkDomain(dom: XmlElement, report: Report): void {
  const cells = numaCells(dom);
  const n = cells.length;
  const have = n === 0 ? 'the domain has no guest NUMA cells (<cpu><numa><cell>)' : `the domain has ${n} guest NUMA cell${n === 1 ? '' : 's'} (0${n > 1 ? `–${n - 1}` : ''})`;
  const cellsRel = n ? [{ span: child(child(dom, 'cpu')!, 'numa')!.nameSpan, message: `${n} NUMA cell${n === 1 ? '' : 's'}` }] : [];

  // Hugepages: each page's nodeset must stay within the cells.
  const mb = child(dom, 'memoryBacking');
  const hp = mb && child(mb, 'hugepages');
  for (const page of hp ? childElements(hp, 'page') : []) {
    const ns = attr(page, 'nodeset');
    const set = ns && parseNodeset(ns.value.text);
    if (!ns || !set) continue;
    const bad = [...set].sort((a, b) => a - b).find((x) => x >= n);
    if (bad === undefined) continue;
    report({
      span: nodeInNodeset(ns, bad),
      message: `hugepages nodeset='${ns.value.text}' names guest NUMA node ${bad}, but ${have}. libvirt: "hugepages: node ${bad} not found"`,
      related: cellsRel,
    });
  }

  // Distances: each sibling id must be a cell.
  cells.forEach((c, i) => {
    const d = child(c, 'distances');
    for (const s of d ? childElements(d, 'sibling') : []) {
      const id = attr(s, 'id');
      if (!id || !/^[0-9]+$/.test(id.value.text) || Number(id.value.text) < n) continue;
      const cur = attr(c, 'id')?.value.text ?? String(i);
      report({
        span: id.valueSpan,
        message: `<sibling id='${id.value.text}'> in the distances of cell ${cur} names a cell the domain does not have: ${have}. libvirt: "XML error: 'sibling_id ${id.value.text}' does not refer to a valid cell within NUMA 'cell id ${cur}'"`,
        related: cellsRel,
        fixes: [{ title: 'Remove this <sibling>', edits: [{ span: s.span, newText: '' }] }],
      });
    }
  });

  // <numatune><memnode cellid=…>.
  const nt = child(dom, 'numatune');
  const seen = new Map<number, XmlElement>();
  for (const mn of nt ? childElements(nt, 'memnode') : []) {
    const cid = attr(mn, 'cellid');
    if (n === 0) {
      report({
        span: cid?.valueSpan ?? mn.nameSpan,
        message: `<memnode> binds the memory of a guest NUMA cell to host nodes, and the domain has no guest NUMA cells (<cpu><numa><cell>). libvirt: "XML error: Element 'memnode' is invalid without any guest NUMA cells"`,
        fixes: [{ title: 'Remove this <memnode>', edits: [{ span: mn.span, newText: '' }] }],
      });
      break;
    }
    if (!cid || !/^[0-9]+$/.test(cid.value.text)) continue;
    const v = Number(cid.value.text);
    if (v >= n) {
      report({
        span: cid.valueSpan,
        message: `<memnode cellid='${v}'> names guest NUMA cell ${v}, but ${have}. libvirt: "XML error: Argument 'cellid' in memnode element must correspond to existing guest's NUMA cell"`,
        related: cellsRel,
      });
      continue;
    }
    const first = seen.get(v);
    if (first) {
      report({
        span: cid.valueSpan,
        message: `A second <memnode> for guest NUMA cell ${v}: each cell takes one. libvirt: "XML error: Multiple memnode elements with cellid ${v}"`,
        related: [{ span: attr(first, 'cellid')!.valueSpan, message: `the first <memnode> for cell ${v}` }],
        fixes: [{ title: 'Remove this <memnode>', edits: [{ span: mn.span, newText: '' }] }],
      });
      continue;
    }
    seen.set(v, mn);
  }

  // Memory devices' <target><node>.
  for (const d of memoryDevices(dom)) {
    if (!d.node) continue;
    const model = d.model?.value.text ?? 'dimm';
    if (n === 0) {
      report({
        span: d.node.m.span(),
        message: `The <memory model='${model}'> is put on guest NUMA node ${d.node.n}, and the domain has no guest NUMA cells. libvirt: "XML error: can't add memory backend as guest has no NUMA nodes configured"`,
      });
    } else if (d.node.n >= n) {
      report({
        span: d.node.m.span(),
        message: `The <memory model='${model}'> is put on guest NUMA node ${d.node.n}, but ${have}. libvirt: "can't add memory backend for guest node '${d.node.n}' as the guest has only '${n}' NUMA nodes configured"`,
        related: cellsRel,
        fixes: [{ title: `Put it on node ${n - 1}`, edits: [{ span: d.node.m.span(), newText: String(n - 1) }] }],
      });
    }
  }
}
