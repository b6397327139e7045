import { Rule } from './rule';
import { hexHuman, qemuName } from './util';
import { qemuAtLeast } from '../qemu/profile';

const GB_LIKE = /^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtTpPeE])(?:i?[bB])$/;

export const rule: Rule = {
  code: 'size-syntax',
  severity: 'error',
  summary:
    "QEMU sizes are a decimal number (a fraction needs a suffix) or 0x-hex, with at most one binary suffix letter: B, K, M, G, T, P or E (1G = 2^30). 'GB', 'GiB' and '1.5' are refused, and from QEMU 8.0 a suffix on a hex number (7.2 only warns).",
  enforcedBy: "Parameter 'size' expects a size value",
  check({ node, qemu, report }) {
    for (const s of node.sizes) {
      if (s.parsed.ok) {
        if (s.parsed.warning && qemuAtLeast(qemu, '8.0')) {
          report({
            span: s.m.span(),
            message: `${s.what} '${s.m.text}' is a hex number with a suffix, which ${qemuName(qemu)} refuses (7.2 only warned): write it in hex bytes (${hexHuman(s.parsed.value)}) or as a decimal with the suffix. QEMU: "${s.qemuError}"`,
          });
        } else if (s.parsed.warning) {
          report({
            severity: 'warning',
            span: s.m.span(),
            message: `${qemuName(qemu)} accepts '${s.m.text}' (${hexHuman(s.parsed.value)}) but warns: "${s.parsed.warning}"; QEMU 8.0 and later refuse a suffix on a hex number.`,
          });
        }
        continue;
      }
      const m = GB_LIKE.exec(s.m.text);
      const fixes = m ? [{ title: `Write ${m[1]}${m[2].toUpperCase()}`, edits: [{ span: s.m.span(), newText: `${m[1]}${m[2].toUpperCase()}` }] }] : [];
      const why =
        s.parsed.reason === 'range'
          ? 'it is 2^64 bytes or more'
          : m
            ? `QEMU size suffixes are one letter: write '${m[1]}${m[2].toUpperCase()}' (binary: 1${m[2].toUpperCase()} = 1024^${'KMGTPE'.indexOf(m[2].toUpperCase()) + 1} bytes)`
            : /^\s*\d+\.\d*$/.test(s.m.text)
              ? 'a fraction needs a unit suffix (e.g. 1.5G)'
              : `it is not a number with an optional B/K/M/G/T/P/E suffix (${s.parsed.detail})`;
      report({ span: s.m.span(), message: `${s.what} '${s.m.text}' is not a size QEMU can read: ${why}. QEMU: "${s.qemuError}"`, fixes });
    }
  },
};
