/**
 * Linux's memmap= kernel parameter (Documentation/admin-guide/kernel-parameters.txt,
 * arch/x86/kernel/e820.c parse_memmap_one): the way to carve reserved,
 * persistent (PRAM, type 12) or soft-reserved (0xefffffff) ranges on today's
 * kernels.
 */
import { MStr } from '../text/source';
import { MemmapEntry } from './model';

/** Linux memparse(): number (C strtoull base 0) with an optional K/M/G/T/P/E suffix. */
export function memparse(s: string): { value: bigint; rest: string } | undefined {
  const m = /^(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)([kKmMgGtTpPeE]?)/.exec(s);
  if (!m) return undefined;
  let v: bigint;
  if (/^0[xX]/.test(m[1])) v = BigInt(m[1]);
  else if (m[1].length > 1 && m[1].startsWith('0')) v = BigInt('0o' + m[1].slice(1));
  else v = BigInt(m[1]);
  const shift = { '': 0n, k: 10n, m: 20n, g: 30n, t: 40n, p: 50n, e: 60n }[m[2].toLowerCase()]!;
  return { value: v << shift, rest: s.slice(m[0].length) };
}

/** Split a kernel command line into words (the kernel honours double quotes). */
function kernelWords(append: MStr): MStr[] {
  const out: MStr[] = [];
  const t = append.text;
  let i = 0;
  while (i < t.length) {
    while (i < t.length && /\s/.test(t[i])) i++;
    const a = i;
    let q = false;
    while (i < t.length && (q || !/\s/.test(t[i]))) {
      if (t[i] === '"') q = !q;
      i++;
    }
    if (i > a) out.push(append.slice(a, i));
  }
  return out;
}

export function parseMemmap(append: MStr): MemmapEntry[] {
  const out: MemmapEntry[] = [];
  for (const w of kernelWords(append)) {
    if (!w.text.startsWith('memmap=')) continue;
    const value = w.slice(7);
    for (const one of value.split(',')) {
      const t = one.text;
      if (t === 'exactmap') {
        out.push({ m: one, kind: 'exactmap' });
        continue;
      }
      const size = memparse(t);
      if (!size) {
        out.push({ m: one, kind: 'limit' });
        continue;
      }
      const op = size.rest[0];
      const after = size.rest.slice(1);
      if (op === undefined) {
        out.push({ m: one, kind: 'limit', size: size.value });
        continue;
      }
      if (op === '%') {
        // memmap=nn%ss-oldtype+newtype
        const st = memparse(after);
        const types = st && /^(?:-(0[xX][0-9a-fA-F]+|\d+))?(?:\+(0[xX][0-9a-fA-F]+|\d+))?$/.exec(st.rest);
        if (!st || !types) {
          out.push({ m: one, kind: 'limit' });
          continue;
        }
        out.push({
          m: one,
          kind: 'convert',
          size: size.value,
          start: st.value,
          oldType: types[1] ? BigInt(types[1]) : undefined,
          newType: types[2] ? BigInt(types[2]) : undefined,
        });
        continue;
      }
      const st = memparse(after);
      const kind = ({ '@': 'ram', '#': 'acpi', $: 'reserved', '!': 'pram' } as const)[op as '@'];
      if (!kind || !st || st.rest !== '') {
        out.push({ m: one, kind: 'limit' });
        continue;
      }
      out.push({ m: one, kind, size: size.value, start: st.value });
    }
  }
  return out;
}
