/**
 * Sizes exactly as QEMU 7.2 (util/cutils.c do_strtosz / qemu_strtosz) and
 * libvirt 9.0 (virScaleInteger / virDomainParseMemory) read them.
 * Everything is bigint: guest address spaces exceed 2^53.
 */

export const KiB = 1n << 10n;
export const MiB = 1n << 20n;
export const GiB = 1n << 30n;
export const TiB = 1n << 40n;
export const U64_MAX = (1n << 64n) - 1n;

export type SizeResult =
  | { ok: true; value: bigint; warning?: string }
  | { ok: false; reason: 'invalid' | 'range'; detail: string };

function suffixMul(c: string | undefined, unit: bigint): bigint {
  switch ((c ?? '').toUpperCase()) {
    case 'B':
      return 1n;
    case 'K':
      return unit;
    case 'M':
      return unit ** 2n;
    case 'G':
      return unit ** 3n;
    case 'T':
      return unit ** 4n;
    case 'P':
      return unit ** 5n;
    case 'E':
      return unit ** 6n;
    default:
      return 0n;
  }
}

/** strtoull-like: optional leading white space and sign, then digits in base. */
function strtou64(s: string, pos: number, base: 10 | 16): { ok: boolean; value: bigint; end: number; neg: boolean; range: boolean } {
  let i = pos;
  while (i < s.length && /[ \t\n\v\f\r]/.test(s[i])) i++;
  let neg = false;
  if (s[i] === '+' || s[i] === '-') {
    neg = s[i] === '-';
    i++;
  }
  if (base === 16 && s[i] === '0' && (s[i + 1] === 'x' || s[i + 1] === 'X') && /[0-9a-fA-F]/.test(s[i + 2] ?? '')) i += 2;
  const digit = base === 10 ? /[0-9]/ : /[0-9a-fA-F]/;
  const start = i;
  while (i < s.length && digit.test(s[i])) i++;
  if (i === start) return { ok: false, value: 0n, end: pos, neg, range: false };
  const value = BigInt((base === 16 ? '0x' : '') + s.slice(start, i));
  return { ok: true, value, end: i, neg, range: value > U64_MAX };
}

/** Smallest normal double (DBL_MIN): glibc's strtod reports ERANGE below it. */
const DBL_MIN = 2.2250738585072014e-308;

/**
 * What QEMU's qemu_strtod_finite does with s at pos (s[pos] === '.'): the
 * prefix glibc strtod consumes, its value, and whether it failed ('none': no
 * conversion; 'range': ERANGE, a non-zero value below DBL_MIN or an
 * exponent too large for a double).
 */
function strtodPrefix(s: string, pos: number): { error?: 'none' | 'range'; end: number; value: number } {
  const m = /^\.[0-9]+(?:[eE][+-]?[0-9]+)?/.exec(s.slice(pos));
  if (!m) return { error: 'none', end: pos, value: 0 };
  const value = parseFloat('0' + m[0]);
  const end = pos + m[0].length;
  if (!Number.isFinite(value) || (value < DBL_MIN && /[1-9]/.test(m[0].replace(/[eE].*$/, '')))) return { error: 'range', end, value };
  return { end, value };
}

/**
 * qemu_strtosz family. defaultSuffix 'B' with unit 1024 is qemu_strtosz (every
 * size property); 'M' is qemu_strtosz_MiB (legacy -numa mem=).
 */
export function parseQemuSize(input: string, defaultSuffix: 'B' | 'M' = 'B', unit = 1024n): SizeResult {
  const bad = (detail: string): SizeResult => ({ ok: false, reason: 'invalid', detail });
  const r = strtou64(input, 0, 10);
  if (!r.ok) return bad('no number');
  if (r.range) return { ok: false, reason: 'range', detail: 'integer part above 2^64' };
  if (r.neg) return bad('negative');
  let val = r.value;
  let end = r.end;
  let valf = 0n;
  let hex = false;
  let warning: string | undefined;
  if (val === 0n && (input[end] === 'x' || input[end] === 'X')) {
    const h = strtou64(input, 0, 16);
    if (!h.ok) return bad('bad hex');
    if (h.range) return { ok: false, reason: 'range', detail: 'hex above 2^64' };
    val = h.value;
    end = h.end;
    if (input[end] === '.') return bad('fraction on hex');
    hex = true;
  } else if (input[end] === '.') {
    const f = strtodPrefix(input, end);
    if (f.error === 'none') {
      end++; // "1.k": C skips the dot and reads the suffix
    } else if (f.error === 'range') {
      // QEMU 7.2 does endptr++ after strtod's ERANGE too: the fraction is
      // dropped and the character after it is skipped ("1.0…01K" = 1 byte,
      // "1.5e400K" = 1 byte: the exponent check is not reached).
      end = f.end + 1;
      if (end > input.length) return bad('fraction below 2.2e-308 at the end (QEMU reads past the string)');
    } else {
      const frac = input.slice(end, f.end);
      if (/[eE]/.test(frac)) return bad('exponent');
      end = f.end;
      // (uint64_t)(fraction * 0x1p64): a fraction that rounds to 1.0 as a
      // double gives 2^64, which x86-64 converts to 0 ("1.99999999999999999K" = 1K).
      const fixed = f.value * 2 ** 64;
      valf = fixed >= 2 ** 64 ? 0n : BigInt(Math.floor(fixed));
    }
  }
  let mul = suffixMul(input[end], unit);
  if (mul > 0n) {
    if (hex) warning = `Using a multiplier suffix on hex numbers is deprecated: ${input}`;
    end++;
  } else {
    mul = suffixMul(defaultSuffix, unit);
  }
  if (mul === 1n) {
    if (valf !== 0n) return bad('fraction without a suffix');
  } else {
    const whole = val * mul + ((valf * mul) >> 64n) + (((valf * mul) & U64_MAX) >> 63n);
    if (whole > U64_MAX) return { ok: false, reason: 'range', detail: 'above 2^64' };
    val = whole;
  }
  if (end !== input.length) return bad(`trailing "${input.slice(end)}"`);
  return warning ? { ok: true, value: val, warning } : { ok: true, value: val };
}

/**
 * -m's size: QemuOpts parses it as a size in bytes, then vl.c treats a value
 * whose last character is a digit as MiB (the legacy suffix-less form).
 */
export function parseQemuRamSize(input: string): SizeResult {
  const r = parseQemuSize(input);
  if (!r.ok) return r;
  // 0 means "not given" (machine default) and is not fixed up.
  if (/[0-9]$/.test(input) && r.value !== 0n) {
    // vl.c passes input + "M" to the machine's keyval parser: "-m 0x10" is
    // 16 MiB with the hex-suffix warning, "-m 1.0" is 1 MiB.
    const m = parseQemuSize(input + 'M');
    if (!m.ok) return m.reason === 'range' ? { ok: false, reason: 'range', detail: `${input} MiB is 2^64 bytes or more` } : m;
    return m;
  }
  return r;
}

/**
 * Legacy -numa node,mem=: the opts visitor first reads the value with
 * qemu_strtosz (bytes: "1.5" is refused), then hw/core/numa.c parse_numa()
 * re-reads it with qemu_strtosz_MiB, ignoring that call's errors: "512" is
 * 512 MiB, "0x10" 16 MiB, and a number too large as MiB keeps its byte value.
 */
export function parseQemuNumaMemSize(input: string): SizeResult {
  const bytes = parseQemuSize(input);
  if (!bytes.ok) return bytes;
  const mib = parseQemuSize(input, 'M');
  return mib.ok ? mib : bytes;
}

/** A unit attribute of libvirt (basictypes.rng "unit"). Returns bytes per unit or undefined. */
export function libvirtUnitScale(unit: string): bigint | undefined {
  const u = unit.toLowerCase();
  if (u === 'b' || u === 'byte' || u === 'bytes') return 1n;
  const m = /^([kmgtpe])(i?b)?$/.exec(u);
  if (!m) return undefined;
  const power = BigInt('kmgtpe'.indexOf(m[1]) + 1);
  if (m[2] === 'b') return 1000n ** power; // "KB", "GB": decimal
  return 1024n ** power; // "K", "KiB"
}

export type ScaledResult = { ok: true; bytes: bigint; decimal: boolean } | { ok: false; detail: string };

/** virScaleInteger: an unsigned integer value with a unit (default scale given). */
export function parseLibvirtScaled(value: string, unit: string | undefined, defaultScale: bigint): ScaledResult {
  const v = value.trim();
  if (!/^[0-9]+$/.test(v)) return { ok: false, detail: `Invalid value '${value}'` };
  let scale = defaultScale;
  let decimal = false;
  if (unit !== undefined && unit !== '') {
    const s = libvirtUnitScale(unit);
    if (s === undefined) return { ok: false, detail: `unknown suffix '${unit}'` };
    scale = s;
    decimal = /^[kmgtpe]b$/i.test(unit);
  }
  const bytes = BigInt(v) * scale;
  if (bytes > U64_MAX) return { ok: false, detail: 'value too large' };
  return { ok: true, bytes, decimal };
}

export function hex(v: bigint): string {
  return '0x' + v.toString(16);
}

const UNITS: [bigint, string][] = [
  [1n << 60n, 'EiB'],
  [1n << 50n, 'PiB'],
  [TiB, 'TiB'],
  [GiB, 'GiB'],
  [MiB, 'MiB'],
  [KiB, 'KiB'],
];

/** "32 GiB", "1.5 GiB", "768 MiB", "4097 B": exact where it can be, else 2 decimals with "~". */
export function human(v: bigint): string {
  for (const [u, name] of UNITS) {
    if (v >= u) {
      if (v % u === 0n) return `${v / u} ${name}`;
      const hundredths = (v * 100n) / u;
      const exact = (v * 100n) % u === 0n;
      const s = `${hundredths / 100n}.${(hundredths % 100n).toString().padStart(2, '0')}`.replace(/\.?0+$/, '');
      return `${exact ? '' : '~'}${s} ${name}`;
    }
  }
  return `${v} B`;
}

/** "0x10000000 (256 MiB)" */
export function hexHuman(v: bigint): string {
  return `${hex(v)} (${human(v)})`;
}

/** The shortest QEMU size string for a value ("256M", "4G", "4097"). */
export function qemuSizeString(v: bigint): string {
  for (const [u, s] of [
    [1n << 60n, 'E'],
    [1n << 50n, 'P'],
    [TiB, 'T'],
    [GiB, 'G'],
    [MiB, 'M'],
    [KiB, 'K'],
  ] as [bigint, string][]) {
    if (v >= u && v % u === 0n) return `${v / u}${s}`;
  }
  return v.toString();
}

export function isPow2(v: bigint): boolean {
  return v > 0n && (v & (v - 1n)) === 0n;
}

export function alignUp(v: bigint, a: bigint): bigint {
  return ((v + a - 1n) / a) * a;
}
