/** Path handling for rules that look at the host (pure string work, no I/O). */
export function resolvePath(baseDir: string, p: string): string {
  if (p.startsWith('/')) return normalize(p);
  return normalize(`${baseDir.replace(/\/+$/, '')}/${p}`);
}

function normalize(p: string): string {
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return '/' + out.join('/');
}
