/** Path handling for rules that look at the host (pure string work, no I/O). */
export function resolvePath(baseDir: string, p: string): string {
  if (p.startsWith('/')) return normalize(p);
  return normalize(`${baseDir.replace(/\/+$/, '')}/${p}`);
}

/** What normalize changes in an absolute path: an empty, '.' or '..' part, or a trailing '/'. */
const NOT_NORMAL = /\/\/|\/\.\.?(?:\/|$)|\/$/;

function normalize(p: string): string {
  // (most paths are normal already: no split and join for each of the rules that look at a backing file)
  if (p.startsWith('/') && !NOT_NORMAL.test(p)) return p;
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return '/' + out.join('/');
}
