import { Rule } from './rule';

export const rule: Rule = {
  code: 'libvirt-numa-memory',
  severity: 'warning',
  summary:
    'With <numa> cells, libvirt 9.0 replaces <memory> by the sum of the cells plus the <target><size> of every memory device (dimm, nvdimm, virtio-mem, virtio-pmem) without a word: the two should agree (<memory> equal to the cells alone, the initial memory, passes too).',
};
