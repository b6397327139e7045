import { Rule } from './rule';
import { MemoryBackend, NodeModel } from '../model/model';
import { hexHuman, isOn, sizeOf } from './util';
import { resolvePath } from './paths';

export const rule: Rule = {
  code: 'fabric-region-mismatch',
  severity: 'error',
  summary:
    'Nodes that share a fabric region must open the same host file with the same size: a node with a larger size fails to start once the file exists, one with a smaller size sees only part of the region.',
  enforcedBy: "backing store size 0x100000 does not match 'size' option 0x400000 (for the larger one, once the file exists)",
  checkCluster({ nodes, report }) {
    const byPath = new Map<string, { node: NodeModel; b: MemoryBackend; size: bigint }[]>();
    for (const node of nodes) {
      for (const b of node.backends.values()) {
        if (b.obj.qomType !== 'memory-backend-file' || !b.memPath || !isOn(b.share)) continue;
        const size = sizeOf(b.size);
        if (size === undefined) continue;
        const path = resolvePath(node.baseDir, b.memPath.text);
        if (!byPath.has(path)) byPath.set(path, []);
        byPath.get(path)!.push({ node, b, size });
      }
    }
    for (const [path, users] of byPath) {
      const nodesUsing = new Set(users.map((u) => u.node));
      if (nodesUsing.size < 2) continue;
      const sizes = new Map<bigint, number>();
      for (const u of users) sizes.set(u.size, (sizes.get(u.size) ?? 0) + 1);
      if (sizes.size < 2) continue;
      // The most common size is taken as intended; report the others.
      const common = [...sizes.entries()].sort((a, b) => b[1] - a[1])[0][0];
      const ref = users.find((u) => u.size === common)!;
      for (const u of users) {
        if (u.size === common) continue;
        report(u.node, {
          span: u.b.size!.m.span(),
          message: `Node '${u.node.name}' maps the shared file ${path} with size ${hexHuman(u.size)}, but node '${ref.node.name}' uses ${hexHuman(common)}: ${u.size > common ? 'this node will fail to start once the file exists at the smaller size' : 'this node sees only part of the region'}.`,
          related: [{ span: ref.b.size!.m.span(), message: `node '${ref.node.name}': size ${hexHuman(common)}`, source: ref.node.source }],
        });
      }
    }
  },
};
