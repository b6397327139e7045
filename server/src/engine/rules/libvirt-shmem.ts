import { Rule } from './rule';

export const rule: Rule = {
  code: 'libvirt-shmem',
  severity: 'error',
  summary:
    "A libvirt <shmem> needs <model type='ivshmem-plain'/> (or ivshmem-doorbell) and a power-of-two size of at least 1 MiB; <size> without unit= is in bytes.",
  enforcedBy: 'XML error: shmem size must be a power of two / shmem size must be at least 1 MiB (1024 KiB)',
};
