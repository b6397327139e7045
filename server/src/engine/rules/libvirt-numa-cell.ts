import { Rule } from './rule';
import { attr, child, childElements, XmlAttr, XmlElement } from '../syntax/xml';
import { numaCells, parseNodeset, Report } from '../readers/libvirt-domain';

/**
 * Raised by the libvirt reader. How libvirt 9.0 reads <cpu><numa><cell>
 * (virDomainNumaDefParseXML, at define):
 * - a cell's id= is its index: ids must be 0 … n-1, each once ("Exactly one
 *   'cell' element per guest NUMA cell allowed, non-contiguous ranges or
 *   ranges not starting from 0 are not allowed", "Duplicate NUMA cell info for
 *   cell id 'N'");
 * - no vCPU in two cells ("NUMA cells N and M have overlapping vCPU ids");
 * - memAccess is 'shared' or 'private', discard 'yes' or 'no' ("Invalid value
 *   for attribute 'memAccess' in element 'cell': 'x'.");
 * - <distances>: at least one <sibling>; a value is 10 (LOCAL_DISTANCE) for
 *   the cell itself and 11 … 255 for another cell ("'value N' is invalid for
 *   'sibling id M' under NUMA 'cell id K'").
 * Sibling ids naming no cell are libvirt-numa-cell-ref.
 */
export const rule: Rule = {
  code: 'libvirt-numa-cell',
  severity: 'error',
  summary:
    "Guest NUMA cells as libvirt 9.0 reads them at define: ids 0 … n-1 each once, no vCPU in two cells, memAccess 'shared'|'private', discard 'yes'|'no', distances 10 to the cell itself and 11–255 to others.",
  enforcedBy: "Exactly one 'cell' element per guest NUMA cell allowed, non-contiguous ranges or ranges not starting from 0 are not allowed / Invalid value for attribute 'memAccess' in element 'cell': 'x'. / 'value 10' is invalid for 'sibling id 1' under NUMA 'cell id 0'",
};

export function checkDomain(dom: XmlElement, report: Report): void {
  const cells = numaCells(dom);
  const n = cells.length;
  const byId = new Map<number, XmlElement>();
  const cpus: { id: number; set: Set<number>; a: XmlAttr }[] = [];
  for (let i = 0; i < n; i++) {
    const c = cells[i];
    const ida = attr(c, 'id');
    const id = ida && /^[0-9]+$/.test(ida.value.text) ? Number(ida.value.text) : ida ? undefined : i;
    if (id === undefined) continue;
    if (id >= n) {
      report({
        span: ida!.valueSpan,
        message: `Cell id ${id} with ${n} cell${n === 1 ? '' : 's'}: libvirt numbers the guest NUMA cells 0 … ${n - 1}, one <cell> each (the id is the cell's index). libvirt: "XML error: Exactly one 'cell' element per guest NUMA cell allowed, non-contiguous ranges or ranges not starting from 0 are not allowed"`,
        fixes: byId.has(i) ? [] : [{ title: `Use id='${i}'`, edits: [{ span: ida!.valueSpan, newText: String(i) }] }],
      });
      return; // libvirt stops at the first cell it cannot place
    }
    const first = byId.get(id);
    if (first) {
      report({
        span: (ida ?? attr(c, 'memory'))?.valueSpan ?? c.nameSpan,
        message: `A second <cell> with id ${id}: each guest NUMA cell 0 … ${n - 1} takes one <cell>. libvirt: "XML error: Duplicate NUMA cell info for cell id '${id}'"`,
        related: [{ span: attr(first, 'id')?.valueSpan ?? first.nameSpan, message: `the first cell ${id}` }],
      });
      return;
    }
    byId.set(id, c);
    const ca = attr(c, 'cpus');
    const set = ca && parseNodeset(ca.value.text);
    if (ca && set && set.size) {
      for (const o of cpus) {
        const both = [...set].filter((x) => o.set.has(x));
        if (!both.length) continue;
        report({
          span: ca.valueSpan,
          message: `vCPU${both.length > 1 ? 's' : ''} ${both.slice(0, 8).join(', ')}${both.length > 8 ? ' …' : ''} in cells ${o.id} and ${id}: a vCPU belongs to one guest NUMA cell. libvirt: "unsupported configuration: NUMA cells ${id} and ${o.id} have overlapping vCPU ids"`,
          related: [{ span: o.a.valueSpan, message: `cell ${o.id}'s cpus` }],
        });
        return;
      }
      cpus.push({ id, set, a: ca });
    }
    for (const [name, ok] of [['memAccess', ['shared', 'private']], ['discard', ['yes', 'no']]] as const) {
      const a = attr(c, name);
      if (!a || (ok as readonly string[]).includes(a.value.text)) continue;
      const near = ok.find((o) => o.toLowerCase() === a.value.text.trim().toLowerCase());
      report({
        span: a.valueSpan,
        message: `${name}='${a.value.text}': libvirt takes ${ok.map((o) => `'${o}'`).join(' or ')}. libvirt: "XML error: Invalid value for attribute '${name}' in element 'cell': '${a.value.text}'."`,
        fixes: near ? [{ title: `Use ${name}='${near}'`, edits: [{ span: a.valueSpan, newText: near }] }] : [],
      });
      return;
    }
    const d = child(c, 'distances');
    if (!d) continue;
    const sibs = childElements(d, 'sibling');
    if (!sibs.length) {
      report({
        span: d.nameSpan,
        message: `<distances> without any <sibling id='…' value='…'/>. libvirt: "XML error: NUMA distances defined without siblings"`,
        fixes: [{ title: 'Remove the empty <distances>', edits: [{ span: d.span, newText: '' }] }],
      });
      return;
    }
    for (const s of sibs) {
      const sid = attr(s, 'id');
      const val = attr(s, 'value');
      if (!sid || !val || !/^[0-9]+$/.test(sid.value.text) || !/^[0-9]+$/.test(val.value.text)) continue;
      const si = Number(sid.value.text);
      if (si >= n) continue; // libvirt-numa-cell-ref
      const v = Number(val.value.text);
      const self = si === id;
      if (v >= 10 && v <= 255 && self === (v === 10)) continue;
      const want = self ? 'the distance of a cell to itself is 10 (LOCAL_DISTANCE)' : v === 10 ? 'only a cell\'s distance to itself is 10 (LOCAL_DISTANCE); to another cell it is 11–255' : 'distances are 10 (to the cell itself) or 11–255 (to another cell; 255 = unreachable)';
      report({
        span: val.valueSpan,
        message: `Distance ${v} from cell ${id} to cell ${si}: ${want}. libvirt: "XML error: 'value ${v}' is invalid for 'sibling id ${si}' under NUMA 'cell id ${id}'"`,
        fixes: self ? [{ title: "Use value='10'", edits: [{ span: val.valueSpan, newText: '10' }] }] : v === 10 ? [{ title: "Use value='20'", edits: [{ span: val.valueSpan, newText: '20' }] }] : [],
      });
      return;
    }
  }
}
