/**
 * memparse / parseMemmap against the forms of Linux's
 * Documentation/admin-guide/kernel-parameters.txt (memmap=) and the parser in
 * arch/x86/kernel/e820.c (parse_memmap_opt / parse_memmap_one) and
 * lib/cmdline.c (memparse, next_arg).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { memparse, parseMemmap } from '../server/src/engine/model/memmap';
import { MStr } from '../server/src/engine/text/source';
import { analyzeDocument } from '../server/src/engine/index';

const K = 1n << 10n;
const M = 1n << 20n;
const G = 1n << 30n;
const T = 1n << 40n;

/** Entries without their MStr, plus the source text each entry covers. */
function entries(append: string, offset = 0) {
  return parseMemmap(MStr.source(append, offset)).map((e) => {
    const { m, ...rest } = e;
    const s = m.span();
    return { ...rest, at: append.slice(s.start - offset, s.end - offset) };
  });
}

test('memparse: suffixes K M G T P E in either case, base-0 numbers', () => {
  const cases: [string, bigint, string][] = [
    ['100', 100n, ''],
    ['64K', 64n * K, ''],
    ['64k', 64n * K, ''],
    ['512M', 512n * M, ''],
    ['2G', 2n * G, ''],
    ['2g', 2n * G, ''],
    ['1T', T, ''],
    ['1P', 1n << 50n, ''],
    ['1e', 1n << 60n, ''],
    ['0x10000', 0x10000n, ''],
    ['0X10000', 0x10000n, ''],
    ['0x18690000', 0x18690000n, ''],
    ['0x1G', G, ''], // a suffix on hex is fine for memparse
    ['0x1e', 0x1en, ''], // e is a hex digit here
    ['010', 8n, ''], // octal
    ['010M', 8n * M, ''],
    ['0', 0n, ''],
    ['08', 0n, '8'], // octal stops at 8
    ['0xg', 0n, 'xg'], // "0x" without a hex digit: the 0, then x
    ['1024G@', 1024n * G, '@'],
    ['1B', 1n, 'B'], // no B suffix in the kernel
    ['16E', 0n, ''], // shifted modulo 2^64
    ['18446744073709551617', 1n, ''], // simple_strtoull wraps
  ];
  for (const [s, v, rest] of cases) assert.deepEqual(memparse(s), { value: v, rest }, s);
  for (const s of ['', 'G', '-1M', '+1M', ' 1M', 'x10']) assert.equal(memparse(s), undefined, s);
});

test('memmap=nn[KMG]@ss[KMG], #, $, ! and the documented list example', () => {
  assert.deepEqual(entries('memmap=100M@2G,100M#3G,1G!1024G'), [
    { kind: 'ram', size: 100n * M, start: 2n * G, at: '100M@2G' },
    { kind: 'acpi', size: 100n * M, start: 3n * G, at: '100M#3G' },
    { kind: 'pram', size: G, start: 1024n * G, at: '1G!1024G' },
  ]);
  // "Exclude memory from 0x18690000-0x1869ffff": both spellings of the doc.
  assert.deepEqual(entries('memmap=64K$0x18690000'), [{ kind: 'reserved', size: 64n * K, start: 0x18690000n, at: '64K$0x18690000' }]);
  assert.deepEqual(entries('memmap=0x10000$0x18690000'), [{ kind: 'reserved', size: 0x10000n, start: 0x18690000n, at: '0x10000$0x18690000' }]);
  // The usual legacy-pmem carve-out, and octal/hex mixes.
  assert.deepEqual(entries('memmap=4G!12G'), [{ kind: 'pram', size: 4n * G, start: 12n * G, at: '4G!12G' }]);
  assert.deepEqual(entries('memmap=010M!0x100000000'), [{ kind: 'pram', size: 8n * M, start: 4n * G, at: '010M!0x100000000' }]);
  assert.deepEqual(entries('memmap=0x40000000!0x1G'), [{ kind: 'pram', size: G, start: G, at: '0x40000000!0x1G' }]);
});

test('memmap=nn[KMG] alone is a limit like mem=', () => {
  assert.deepEqual(entries('memmap=3G'), [{ kind: 'limit', size: 3n * G, at: '3G' }]);
  // Any other character after the size: the kernel applies the limit (and reports -EINVAL).
  assert.deepEqual(entries('memmap=3G^4G'), [{ kind: 'limit', size: 3n * G, at: '3G^4G' }]);
});

test('memmap=<size>%<offset>-<oldtype>+<newtype>', () => {
  assert.deepEqual(entries('memmap=512M%0x140000000-1+0xefffffff'), [
    { kind: 'convert', size: 512n * M, start: 0x140000000n, oldType: 1n, newType: 0xefffffffn, at: '512M%0x140000000-1+0xefffffff' },
  ]);
  // Either type may be left out.
  assert.deepEqual(entries('memmap=1G%4G+12'), [{ kind: 'convert', size: G, start: 4n * G, newType: 12n, at: '1G%4G+12' }]);
  assert.deepEqual(entries('memmap=1G%4G-1'), [{ kind: 'convert', size: G, start: 4n * G, oldType: 1n, at: '1G%4G-1' }]);
  assert.deepEqual(entries('memmap=1G%4G'), [{ kind: 'convert', size: G, start: 4n * G, at: '1G%4G' }]);
  // Types are simple_strtoull base 0: 014 is octal 12.
  assert.deepEqual(entries('memmap=1G%4G-01+014'), [{ kind: 'convert', size: G, start: 4n * G, oldType: 1n, newType: 12n, at: '1G%4G-01+014' }]);
  // Trailing characters: the kernel ignores the entry.
  assert.deepEqual(entries('memmap=1G%4G-1+12x'), [{ kind: 'limit', at: '1G%4G-1+12x' }]);
});

test('memmap=exactmap and lists', () => {
  assert.deepEqual(entries('memmap=exactmap memmap=640K@0,1M@1M memmap=2G@4G'), [
    { kind: 'exactmap', at: 'exactmap' },
    { kind: 'ram', size: 640n * K, start: 0n, at: '640K@0' },
    { kind: 'ram', size: M, start: M, at: '1M@1M' },
    { kind: 'ram', size: 2n * G, start: 4n * G, at: '2G@4G' },
  ]);
  assert.deepEqual(entries('memmap=exactmap,1G@1M'), [
    { kind: 'exactmap', at: 'exactmap' },
    { kind: 'ram', size: G, start: M, at: '1G@1M' },
  ]);
});

test('entries the kernel ignores are kept, without a size', () => {
  assert.deepEqual(entries('memmap=,foo,4G!8G,'), [
    { kind: 'limit', at: '' },
    { kind: 'limit', at: 'foo' },
    { kind: 'pram', size: 4n * G, start: 8n * G, at: '4G!8G' },
    { kind: 'limit', at: '' },
  ]);
});

test('kernel command line: words, quotes, other parameters, "--"', () => {
  const append = 'console=ttyS0 root=/dev/vda memmapx=1G!4G mem=8G memmap="2G!4G" "memmap=1G$8G" memmap=1G!12G -- memmap=1G!16G';
  assert.deepEqual(entries(append), [
    { kind: 'pram', size: 2n * G, start: 4n * G, at: '2G!4G' },
    { kind: 'reserved', size: G, start: 8n * G, at: '1G$8G' },
    { kind: 'pram', size: G, start: 12n * G, at: '1G!12G' },
  ]);
});

test('entries keep their place in the document', () => {
  const text = `qemu-system-x86_64 -M q35 -m 8G -kernel bzImage -append "console=ttyS0 memmap=4G!4G,512M%0x140000000-1+0xefffffff"\n`;
  const node = analyzeDocument(text, 'node.qemu').nodes[0];
  assert.deepEqual(
    node.memmap.map((e) => [e.kind, text.slice(e.m.span().start, e.m.span().end)]),
    [
      ['pram', '4G!4G'],
      ['convert', '512M%0x140000000-1+0xefffffff'],
    ],
  );
  // In a shell script the $ of a reserved range is escaped; the entry maps back through the quotes.
  const sh = `qemu-system-x86_64 -M q35 -append "memmap=64K\\$0x18690000"\n`;
  const e = analyzeDocument(sh, 'node.sh').nodes[0].memmap;
  assert.deepEqual(e.map((x) => [x.kind, x.size, x.start]), [['reserved', 64n * K, 0x18690000n]]);
  assert.equal(sh.slice(e[0].m.span().start, e[0].m.span().end), '64K\\$0x18690000');
});
