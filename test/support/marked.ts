/**
 * Fixtures that mark the expected ranges inline: ⟦…⟧ around each range a
 * diagnostic must cover. marked() strips the markers and returns the ranges
 * as offsets of the stripped text, in order.
 */
export function marked(src: string): { text: string; spans: { start: number; end: number }[] } {
  let text = '';
  const spans: { start: number; end: number }[] = [];
  const open: number[] = [];
  for (const ch of src) {
    if (ch === '⟦') open.push(text.length);
    else if (ch === '⟧') spans.push({ start: open.pop()!, end: text.length });
    else text += ch;
  }
  spans.sort((a, b) => a.start - b.start);
  return { text, spans };
}
