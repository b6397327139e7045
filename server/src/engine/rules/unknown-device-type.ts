import { Rule } from './rule';
import { deviceKnown } from '../qemu/catalog';

function closest(name: string, names: string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const n of names) {
    const d = editDistance(name, n);
    if (d < bestD) {
      bestD = d;
      best = n;
    }
  }
  return best;
}

export function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0];
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j];
      dp[j] = Math.min(dp[j] + 1, dp[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length];
}

export { closest };

const HINTS: Record<string, string> = {
  ivshmem: "the legacy 'ivshmem' device was removed in QEMU 4.0: use ivshmem-plain,memdev=… (or ivshmem-doorbell,chardev=…)",
  'cxl-type2': 'QEMU emulates only CXL Type 3 memory devices (cxl-type3)',
};

export const rule: Rule = {
  code: 'unknown-device-type',
  severity: 'error',
  summary: 'A -device driver must be one that the QEMU judged for (qemu-system-x86_64, or qemu-system-aarch64 for an aarch64 node: its profile) has.',
  enforcedBy: "'ivshmem' is not a valid device model name",
  check({ node, qemu, report }) {
    for (const d of node.devices) {
      if (!d.driver || deviceKnown(qemu, d.driver)) continue;
      const near = closest(d.driver, Object.keys(qemu.devices));
      report({
        span: d.driverM.span(),
        message: `QEMU ${qemu.version} has no device '${d.driver}'${HINTS[d.driver] ? `: ${HINTS[d.driver]}` : near ? ` (did you mean '${near}'?)` : ''}. QEMU: "'${d.driver}' is not a valid device model name"`,
        fixes: near && !HINTS[d.driver] ? [{ title: `Change to ${near}`, edits: [{ span: d.driverM.span(), newText: near }] }] : [],
      });
    }
  },
};
