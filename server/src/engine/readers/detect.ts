/** Which of the three inputs a document is, from its content (and name as a hint). */
export type DocumentKind = 'topology' | 'libvirt' | 'qemu' | 'xml';

export function detectKind(text: string, source = ''): DocumentKind {
  let i = 0;
  const n = text.length;
  if (text.charCodeAt(0) === 0xfeff) i = 1;
  for (;;) {
    while (i < n && /\s/.test(text[i])) i++;
    if (text.startsWith('<?', i)) {
      const e = text.indexOf('?>', i);
      if (e < 0) break;
      i = e + 2;
      continue;
    }
    if (text.startsWith('<!--', i)) {
      const e = text.indexOf('-->', i);
      if (e < 0) break;
      i = e + 3;
      continue;
    }
    if (text.startsWith('<!', i)) {
      const e = text.indexOf('>', i);
      if (e < 0) break;
      i = e + 1;
      continue;
    }
    break;
  }
  if (text[i] === '<') {
    const m = /^<([A-Za-z_][\w.:-]*)/.exec(text.slice(i, i + 200));
    const name = m?.[1] ?? '';
    const local = name.slice(name.indexOf(':') + 1);
    if (local === 'cluster') return 'topology';
    if (local === 'domain') return 'libvirt';
    if (source.endsWith('.cluster.xml')) return 'topology';
    return 'xml';
  }
  if (source.endsWith('.cluster.xml')) return 'topology';
  return 'qemu';
}
