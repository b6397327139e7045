import { Rule } from './rule';
import { linkedBackend, isOn } from './util';

export const rule: Rule = {
  code: 'ivshmem-share-off',
  severity: 'error',
  summary:
    'The backend of an ivshmem device must be shared memory: a memory-backend-file with share=on (without it QEMU maps the file privately, copy-on-write, so guest writes reach neither the file nor any other VM), or a memory-backend-shm (QEMU 9.1 and later, always shared). QEMU does not check.',
  enforcedBy: 'docs/specs/ivshmem-spec.txt: "It should have option \'share\' set."',
  check({ node, report }) {
    for (const d of node.devices) {
      if (d.driver !== 'ivshmem-plain') continue;
      const link = linkedBackend(node, d);
      if (!link) continue;
      const { p, b } = link;
      const type = b.obj.qomType;
      // backends/hostmem-shm.c (9.1): POSIX shared memory, share is always on (it refuses share=off).
      if (type === 'memory-backend-shm') continue;
      if (type === 'memory-backend-ram' || type === 'memory-backend-memfd') {
        report({
          severity: 'warning',
          span: b.obj.typeM.span(),
          message: `ivshmem memdev '${b.id}' is ${type}: anonymous memory that no other VM can open by path, so nothing is shared between VMs. Use memory-backend-file,mem-path=…,share=on (or /dev/shm/NAME).`,
          related: [{ span: p.value.span(), message: 'shared through ivshmem here' }],
        });
        continue;
      }
      if (isOn(b.share)) continue;
      const at = b.share ? b.share.value.span() : b.obj.m.span();
      report({
        span: b.share ? b.share.value.span() : b.idM.span(),
        message: `memory backend '${b.id}' behind ivshmem has ${b.share ? `share=${b.share.value.text}` : 'no share=on (the default is off)'}: QEMU maps ${b.memPath ? `'${b.memPath.text}'` : 'it'} privately, so the guest's writes never reach the file or any other VM. Add share=on.`,
        related: [{ span: p.value.span(), message: 'shared through ivshmem here' }],
        fixes: [
          b.share
            ? { title: 'Set share=on', edits: [{ span: b.share.value.span(), newText: 'on' }] }
            : { title: 'Add share=on', edits: [{ span: { start: at.end, end: at.end }, newText: ',share=on' }] },
        ],
      });
    }
  },
};
