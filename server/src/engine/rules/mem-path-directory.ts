import { Rule } from './rule';
import { resolvePath } from './paths';

export const rule: Rule = {
  code: 'mem-path-directory',
  severity: 'warning',
  summary:
    'When mem-path names a directory, QEMU creates a temporary file in it and unlinks it at once: the memory can never be shared with another VM and is gone when QEMU exits.',
  check({ node, host, report }) {
    for (const b of node.backends.values()) {
      if (b.obj.qomType !== 'memory-backend-file' || !b.memPath) continue;
      const st = host.stat(resolvePath(node.baseDir, b.memPath.text));
      if (!st?.isDirectory) continue;
      report({
        span: b.memPath.span(),
        message: `mem-path '${b.memPath.text}' is a directory: QEMU backs '${b.id}' with an unnamed temporary file there, so no other VM can share it and its contents are lost at exit. Name a file instead.`,
      });
    }
  },
};
