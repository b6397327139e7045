import { Rule } from './rule';
import { qemuAtLeast } from '../qemu/profile';
import { devProp, isOn, linkedBackend, qemuName } from './util';
import { TextEdit } from '../diagnostics';

/**
 * hw/virtio/virtio-mem.c virtio_mem_device_realize(), QEMU 8.0 and later
 * ("virtio-mem: Fail if a memory backend with "prealloc=on" is specified"):
 * a virtio-mem device plugs and unplugs memory of its backend at run time, so
 * the backend must not preallocate it all at start; the device preallocates
 * what it plugs when it has prealloc=on itself. QEMU 7.2 accepts it (and the
 * whole backend is allocated up front).
 */
export const rule: Rule = {
  code: 'virtio-mem-prealloc-memdev',
  severity: 'error',
  summary:
    "From QEMU 8.0 the memdev of a virtio-mem device must not have prealloc=on: set prealloc=on on the virtio-mem device instead, which preallocates only the memory it plugs.",
  enforcedBy: "'memdev' property specifies a memdev with preallocation enabled: vmem0. Instead, specify 'prealloc=on' for the virtio-mem device. ",
  check({ node, qemu, report }) {
    if (!qemuAtLeast(qemu, '8.0')) return;
    for (const d of node.devices) {
      if (d.driver !== 'virtio-mem-pci') continue;
      const link = linkedBackend(node, d);
      if (!link || !isOn(link.b.prealloc)) continue;
      const pre = link.b.prealloc!;
      const edits: TextEdit[] = [];
      if (!link.b.obj.json && !pre.implied) edits.push({ span: { start: pre.keySpan.start - 1, end: pre.value.span().end }, newText: '' });
      if (!d.json && !isOn(devProp(d, 'prealloc'))) {
        const devPre = devProp(d, 'prealloc');
        edits.push(devPre ? { span: devPre.value.span(), newText: 'on' } : { span: { start: d.m.span().end, end: d.m.span().end }, newText: ',prealloc=on' });
      }
      report({
        span: pre.bare ? pre.keySpan : { start: pre.keySpan.start, end: pre.value.span().end },
        message: `Backend '${link.b.id}' of virtio-mem-pci${d.id ? ` '${d.id.text}'` : ''} has prealloc=on: virtio-mem plugs its memory piecemeal at run time, so the backend must not preallocate all ${link.b.size ? link.b.size.m.text : 'of it'}; put prealloc=on on the virtio-mem device, which preallocates what it plugs. QEMU: "'memdev' property specifies a memdev with preallocation enabled: ${link.b.id}. Instead, specify 'prealloc=on' for the virtio-mem device. " (${qemuName(qemu)})`,
        related: [{ span: link.p.value.span(), message: 'the virtio-mem device\'s memdev' }],
        fixes: edits.length === 2 ? [{ title: 'Move prealloc=on to the virtio-mem device', edits }] : [],
      });
    }
  },
};
