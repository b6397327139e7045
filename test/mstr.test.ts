/**
 * MStr (engine/text/source.ts) keeps, for every character of a string built
 * from read and generated text, the source span it came from. Checked here
 * against the plainest model there is (one [start, end) per character) on
 * random concatenations, slices and offset maps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MStr, OffsetMap, Span } from '../server/src/engine/text/source';

/** The reference: a string and one span per character. */
interface Ref { text: string; spans: Span[] }

const ofRef = (r: Ref): Ref => r;
function refSource(text: string, at: number): Ref {
  return ofRef({ text, spans: [...text].map((_, i) => ({ start: at + i, end: at + i + 1 })) });
}
function refSynthetic(text: string, where: Span): Ref {
  return { text, spans: [...text].map(() => where) };
}
/** Every character's span, as the MStr reports it (span(i, i + 1)). */
function spansOf(m: MStr): Span[] {
  return [...m.text].map((_, i) => m.span(i, i + 1));
}
function cover(spans: Span[]): Span {
  return { start: Math.min(...spans.map((s) => s.start)), end: Math.max(...spans.map((s) => s.end)) };
}

/** A small deterministic PRNG (mulberry32), so that a failure repeats. */
function prng(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('concat, slice and span agree with one span per character, on random strings of read and generated parts', () => {
  const rnd = prng(17);
  const int = (n: number) => Math.floor(rnd() * n);
  for (let round = 0; round < 400; round++) {
    const parts: MStr[] = [];
    const refs: Ref[] = [];
    let at = int(50);
    for (let k = 1 + int(6); k > 0; k--) {
      const text = 'abcdefghij'.slice(0, int(8));
      const kind = int(3);
      if (kind === 0) {
        parts.push(MStr.source(text, at));
        refs.push(refSource(text, at));
        // the next part continues this one (one run) or jumps elsewhere
        at = int(2) ? at + text.length : int(200);
      } else if (kind === 1) {
        const where = { start: int(100), end: 100 + int(100) };
        parts.push(MStr.synthetic(text, where));
        refs.push(refSynthetic(text, where));
      } else if (parts.length) {
        // a slice of an earlier part
        const i = int(parts.length);
        const a = int(parts[i].length + 1);
        const b = a + int(parts[i].length - a + 1);
        parts.push(parts[i].slice(a, b));
        refs.push({ text: refs[i].text.slice(a, b), spans: refs[i].spans.slice(a, b) });
      }
    }
    const m = MStr.concat(parts);
    const ref: Ref = { text: refs.map((r) => r.text).join(''), spans: refs.flatMap((r) => r.spans) };
    assert.equal(m.text, ref.text);
    assert.deepEqual(spansOf(m), ref.spans, `round ${round}`);
    if (ref.text.length) assert.deepEqual(m.span(), cover(ref.spans));
    // slices of the concatenation, and their spans
    for (let j = 0; j < 5; j++) {
      const a = int(ref.text.length + 1);
      const b = a + int(ref.text.length - a + 1);
      const s = m.slice(a, b);
      assert.equal(s.text, ref.text.slice(a, b));
      assert.deepEqual(spansOf(s), ref.spans.slice(a, b), `round ${round} slice ${a}-${b}`);
      if (b > a) assert.deepEqual(m.span(a, b), cover(ref.spans.slice(a, b)));
    }
  }
});

test('mapOffsets moves every character as the map says, also where a read run is torn apart; forEachOffset names every offset used', () => {
  // Offsets from 10 on move by 5 (as text inserted at 10 would move them): a run over 8..12 is torn.
  const m: OffsetMap = { map: (o, end) => (o > 10 || (o === 10 && !end) ? o + 5 : o), uniform: (a, b) => (a >= 10) === (b >= 10) };
  const s = MStr.concat([MStr.source('abcde', 8), MStr.synthetic('=', { start: 30, end: 32 }), MStr.source('xy', 40)]);
  const mapped = s.mapOffsets(m);
  assert.equal(mapped.text, 'abcde=xy');
  assert.deepEqual(spansOf(mapped), [
    { start: 8, end: 9 }, { start: 9, end: 10 }, { start: 15, end: 16 }, { start: 16, end: 17 }, { start: 17, end: 18 },
    { start: 35, end: 37 }, { start: 45, end: 46 }, { start: 46, end: 47 },
  ]);
  const seen = new Set<number>();
  s.forEachOffset((o) => seen.add(o));
  for (const o of [8, 12, 13, 30, 32, 40, 41, 42]) assert.ok(seen.has(o), `offset ${o}: ${[...seen].sort((a, b) => a - b)}`);
});

test('sameAs (run by run) is true exactly when two strings have the same text and every character the same span, however their runs are cut', () => {
  const rnd = prng(29);
  const int = (n: number) => Math.floor(rnd() * n);
  let equal = 0;
  let unequal = 0;
  for (let round = 0; round < 3000; round++) {
    // a random string of read and generated parts, and the same characters cut otherwise: a read
    // character alone, or as a generated one whose span is that character's
    const a: MStr[] = [];
    const b: MStr[] = [];
    let at = int(40);
    for (let k = 1 + int(5); k > 0; k--) {
      const text = 'abcdefgh'.slice(0, 1 + int(7));
      if (int(3)) {
        a.push(MStr.source(text, at));
        // (now and then generated text that sits where the read text's first character is: the same for one character only)
        if (int(8) === 0) b.push(MStr.synthetic(text, { start: at, end: at + 1 }));
        else for (let i = 0; i < text.length; ) {
          const len = 1 + int(text.length - i);
          if (len === 1 && int(2)) b.push(MStr.synthetic(text[i], { start: at + i, end: at + i + 1 }));
          else b.push(MStr.source(text.slice(i, i + len), at + i));
          i += len;
        }
        at = int(2) ? at + text.length : int(100);
      } else {
        const where = { start: int(60), end: 60 + int(60) };
        a.push(MStr.synthetic(text, where));
        const cut = int(text.length + 1);
        b.push(MStr.synthetic(text.slice(0, cut), where), MStr.synthetic(text.slice(cut), where));
      }
    }
    // now and then one character of b moved elsewhere
    if (int(3) === 0) {
      const j = int(b.length);
      const t = b[j].text;
      if (t.length) {
        const i = int(t.length);
        const s = b[j].span(i, i + 1);
        const moved = int(2) ? MStr.source(t[i], s.start + 1 + int(3)) : MStr.synthetic(t[i], { start: s.start, end: s.end + 1 + int(3) });
        b.splice(j, 1, b[j].slice(0, i), moved, b[j].slice(i + 1));
      }
    }
    // (no empty parts: an empty part last would leave where the string sits, which sameAs compares too, short of its last character)
    const [x, y] = [MStr.concat(a), MStr.concat(b.filter((p) => p.length))];
    const same = x.text === y.text && JSON.stringify(spansOf(x)) === JSON.stringify(spansOf(y)) && JSON.stringify(x.span()) === JSON.stringify(y.span());
    assert.equal(x.sameAs(y), same, `round ${round}: ${x.text} ${JSON.stringify(spansOf(x))} ${JSON.stringify(spansOf(y))}`);
    assert.equal(y.sameAs(x), same, `round ${round}, the other way`);
    if (same) equal++;
    else unequal++;
  }
  // (both answers are asked for many times)
  assert.ok(equal > 500 && unequal > 500, `${equal} equal, ${unequal} not`);
});
