import { Rule } from './rule';
import { devProp, deviceLabel } from './util';

export const rule: Rule = {
  code: 'ivshmem-doorbell-no-chardev',
  severity: 'error',
  summary:
    'ivshmem-doorbell gets its shared memory and interrupts from an ivshmem server through chardev= (a -chardev socket); QEMU refuses it without one. For plain shared memory without interrupts use ivshmem-plain,memdev=.',
  enforcedBy: "You must specify a 'chardev'",
  check({ node, report }) {
    for (const d of node.devices) {
      if (d.driver !== 'ivshmem-doorbell' || devProp(d, 'chardev')) continue;
      report({
        span: d.driverM.span(),
        message: `${deviceLabel(d)} has no chardev=: it must be connected to an ivshmem server socket (-chardev socket,path=…,id=ID and chardev=ID). QEMU: "You must specify a 'chardev'"`,
      });
    }
  },
};
