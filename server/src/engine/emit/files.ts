/** The host files a node's backends need: what `plan` lists and `boot` creates (sparse, never truncating). */
import { NodeModel } from '../model/model';
import { resolvePath } from '../rules/paths';

export interface PlannedFile {
  path: string;
  size: bigint;
  backend: string;
  shared: boolean;
}

export function nodeFiles(node: NodeModel): PlannedFile[] {
  const out: PlannedFile[] = [];
  for (const b of node.backends.values()) {
    if (b.obj.qomType !== 'memory-backend-file' || !b.memPath || !b.size?.parsed.ok) continue;
    if (b.memPath.text.startsWith('/dev/')) continue; // devices (DAX, EGM, /dev/shm is a file system but QEMU creates there itself)
    out.push({
      path: resolvePath(node.baseDir, b.memPath.text),
      size: b.size.parsed.value,
      backend: b.id,
      shared: ['on', 'yes', 'true', 'y'].includes(b.share?.value.text ?? ''),
    });
  }
  return out;
}
