import { Rule } from './rule';

export const rule: Rule = {
  code: 'libvirt-unit',
  severity: 'error',
  summary:
    "libvirt sizes are whole numbers with a unit: one letter or ...iB is binary (G = GiB = 2^30), ...B is decimal (GB = 10^9). Without unit=, <memory> and friends are KiB (but <shmem><size> is bytes).",
  enforcedBy: "invalid argument: unknown suffix 'XB' / XML error: Invalid value '1.5' for element or attribute './memory[1]'",
};
