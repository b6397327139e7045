/**
 * Linux's memmap= kernel parameter (Documentation/admin-guide/kernel-parameters.txt,
 * arch/x86/kernel/e820.c parse_memmap_one): the way to carve reserved,
 * persistent (PRAM, type 12) or soft-reserved (0xefffffff) ranges on today's
 * kernels.
 */
import { MStr } from '../text/source';
import { MemmapEntry } from './model';

const U64 = (1n << 64n) - 1n;

/**
 * Linux simple_strtoull(s, &end, 0): "0x"/"0X" followed by a hex digit is
 * hex, a leading 0 octal, else decimal; no sign, no white space; wraps
 * modulo 2^64. No digits: value 0 and nothing consumed (beyond a "0x" prefix).
 */
function strtoull0(s: string): { value: bigint; rest: string; digits: boolean } {
  let base = 10;
  let i = 0;
  if (s[0] === '0') {
    if ((s[1] === 'x' || s[1] === 'X') && /[0-9a-fA-F]/.test(s[2] ?? '')) {
      base = 16;
      i = 2;
    } else base = 8;
  }
  const digit = base === 16 ? /[0-9a-fA-F]/ : base === 8 ? /[0-7]/ : /[0-9]/;
  let v = 0n;
  const from = i;
  while (i < s.length && digit.test(s[i])) {
    v = (v * BigInt(base) + BigInt(parseInt(s[i], 16))) & U64;
    i++;
  }
  return { value: v, rest: s.slice(i), digits: i > from };
}

/**
 * Linux memparse() (lib/cmdline.c): simple_strtoull base 0 with an optional
 * K/M/G/T/P/E suffix (either case), shifted modulo 2^64. undefined when no
 * number starts the string (the kernel's "p == oldp").
 */
export function memparse(s: string): { value: bigint; rest: string } | undefined {
  const r = strtoull0(s);
  if (!r.digits) return undefined;
  const shift = { k: 10n, m: 20n, g: 30n, t: 40n, p: 50n, e: 60n }[(r.rest[0] ?? '').toLowerCase()];
  if (shift === undefined) return { value: r.value, rest: r.rest };
  return { value: (r.value << shift) & U64, rest: r.rest.slice(1) };
}

/**
 * The words of a kernel command line as lib/cmdline.c next_arg() splits
 * them: white space outside double quotes separates; parsing of kernel
 * parameters stops at "--" (the rest goes to init).
 */
function kernelWords(append: MStr): MStr[] {
  const out: MStr[] = [];
  const t = append.text;
  let i = 0;
  while (i < t.length) {
    while (i < t.length && /[ \t\n\v\f\r]/.test(t[i])) i++;
    const a = i;
    let q = false;
    while (i < t.length && (q || !/[ \t\n\v\f\r]/.test(t[i]))) {
      if (t[i] === '"') q = !q;
      i++;
    }
    if (i > a) {
      const w = append.slice(a, i);
      if (w.text === '--') break;
      out.push(w);
    }
  }
  return out;
}

/** The value of a memmap= word without the quotes next_arg() drops ("memmap=…", memmap="…"). */
function memmapValue(w: MStr): MStr | undefined {
  let p = w;
  if (p.text.startsWith('"')) p = p.slice(1, p.text.endsWith('"') && p.length > 1 ? p.length - 1 : p.length);
  if (!p.text.startsWith('memmap=')) return undefined;
  let v = p.slice(7);
  if (v.text.startsWith('"')) v = v.slice(1, v.text.endsWith('"') && v.length > 1 ? v.length - 1 : v.length);
  return v;
}

/**
 * Every memmap= entry of a kernel command line, as arch/x86/kernel/e820.c
 * parse_memmap_opt / parse_memmap_one read them (comma-separated entries).
 * An entry the kernel ignores (no number, or a %-entry with trailing
 * characters) is kind 'limit' without a size. Like the kernel, an @ # $ !
 * entry whose start is not a number starts at 0, and any other character
 * after the size makes the entry a limit (mem=).
 */
export function parseMemmap(append: MStr): MemmapEntry[] {
  const out: MemmapEntry[] = [];
  for (const w of kernelWords(append)) {
    const value = memmapValue(w);
    if (!value) continue;
    for (const one of value.split(',')) {
      const t = one.text;
      if (t.startsWith('exactmap')) {
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
      const kind = ({ '@': 'ram', '#': 'acpi', $: 'reserved', '!': 'pram' } as const)[op as '@'];
      if (kind) {
        out.push({ m: one, kind, size: size.value, start: memparse(after)?.value ?? 0n });
        continue;
      }
      if (op === '%') {
        // memmap=nn%ss-oldtype+newtype (either type may be left out; 0 means absent)
        let rest = after;
        const st = memparse(rest);
        let start = 0n;
        if (st) {
          start = st.value;
          rest = st.rest;
        }
        let oldType = 0n;
        let newType = 0n;
        if (rest[0] === '-') {
          const r = strtoull0(rest.slice(1));
          oldType = r.value;
          rest = r.rest;
        }
        if (rest[0] === '+') {
          const r = strtoull0(rest.slice(1));
          newType = r.value;
          rest = r.rest;
        }
        if (rest !== '') {
          out.push({ m: one, kind: 'limit' });
          continue;
        }
        const e: MemmapEntry = { m: one, kind: 'convert', size: size.value, start };
        if (oldType) e.oldType = oldType;
        if (newType) e.newType = newType;
        out.push(e);
        continue;
      }
      out.push({ m: one, kind: 'limit', size: size.value });
    }
  }
  return out;
}
