import { Finding, Rule } from './rule';
import { MemoryBackend, NodeModel } from '../model/model';
import { devProp, hexHuman, isOn, sizeOf } from './util';
import { resolvePath } from './paths';

interface Use {
  node: NodeModel;
  b: MemoryBackend;
  size: bigint;
  path: string;
}

/** The value most users agree on (ties: the first seen), taken as the intended one. */
function majority<K>(uses: Use[], key: (u: Use) => K): K {
  const counts = new Map<K, number>();
  for (const u of uses) counts.set(key(u), (counts.get(key(u)) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1])[0][0];
}

/**
 * A node's shared file backends (and those an ivshmem-plain maps), in backend
 * order: a function of the node model alone, so kept per model (an analysis
 * that keeps a node's model skips this; see engine/incremental.ts).
 */
/**
 * The previous call's nodes and findings (findings are a function of the
 * models alone), by node index; the models are only referenced weakly (a
 * closed document's models are not kept alive by this).
 */
let last: { nodes: WeakRef<NodeModel>[]; found: [number, Finding][] } | undefined;

const perNode = new WeakMap<NodeModel, { uses: Use[]; shared: Use[] }>();
function usesOf(node: NodeModel): { uses: Use[]; shared: Use[] } {
  let r = perNode.get(node);
  if (r) return r;
  r = { uses: [], shared: [] };
  for (const b of node.backends.values()) {
    if (b.obj.qomType !== 'memory-backend-file' || !b.memPath || !isOn(b.share)) continue;
    const size = sizeOf(b.size);
    if (size === undefined) continue;
    const u = { node, b, size, path: resolvePath(node.baseDir, b.memPath.text) };
    r.uses.push(u);
    if (node.devices.some((d) => d.driver === 'ivshmem-plain' && devProp(d, 'memdev')?.value.text === u.b.id)) r.shared.push(u);
  }
  perNode.set(node, r);
  return r;
}

export const rule: Rule = {
  code: 'fabric-region-mismatch',
  severity: 'error',
  summary:
    'Nodes that share a fabric region must open the same host file with the same size: a node with a larger size fails to start once the file exists, one with a smaller size sees only part of the region, and nodes whose region of the same name is backed by different files share nothing.',
  enforcedBy: "backing store size 0x100000 does not match 'size' option 0x400000 (for the larger one, once the file exists)",
  checkCluster({ nodes, report }) {
    // The same models as last time (an edit elsewhere, or none): the same findings.
    if (last && last.nodes.length === nodes.length && last.nodes.every((n, i) => n.deref() === nodes[i])) {
      for (const [i, f] of last.found) report(nodes[i], f);
      return;
    }
    const found: [number, Finding][] = [];
    last = { nodes: nodes.map((n) => new WeakRef(n)), found };
    const index = new Map(nodes.map((n, i) => [n, i]));
    const inner = report;
    report = (n, f) => {
      found.push([index.get(n!)!, f]);
      inner(n, f);
    };
    const uses: Use[] = [];
    const shared: Use[] = [];
    for (const node of nodes) {
      const own = usesOf(node);
      for (const u of own.uses) uses.push(u);
      for (const u of own.shared) shared.push(u);
    }
    // Same file, different sizes.
    const byPath = new Map<string, Use[]>();
    for (const u of uses) {
      const g = byPath.get(u.path);
      if (g) g.push(u);
      else byPath.set(u.path, [u]);
    }
    for (const [path, group] of byPath) {
      if (group.length < 2) continue; // (one use: nothing to compare)
      if (new Set(group.map((u) => u.node)).size < 2 || new Set(group.map((u) => u.size)).size < 2) continue;
      const common = majority(group, (u) => u.size);
      const ref = group.find((u) => u.size === common)!;
      for (const u of group) {
        if (u.size === common) continue;
        report(u.node, {
          span: u.b.size!.m.span(),
          message: `Node '${u.node.name}' maps the shared file ${path} with size ${hexHuman(u.size)}, but node '${ref.node.name}' uses ${hexHuman(common)}: ${u.size > common ? 'this node will fail to start once the file exists at the smaller size' : 'this node sees only part of the region'}.`,
          related: [{ span: ref.b.size!.m.span(), message: `node '${ref.node.name}': size ${hexHuman(common)}`, source: ref.node.source }],
        });
      }
    }
    // Same fabric (an ivshmem backend id), different files.
    const byId = new Map<string, Use[]>();
    for (const u of shared) {
      const g = byId.get(u.b.id);
      if (g) g.push(u);
      else byId.set(u.b.id, [u]);
    }
    for (const [id, group] of byId) {
      if (group.length < 2) continue;
      if (new Set(group.map((u) => u.node)).size < 2 || new Set(group.map((u) => u.path)).size < 2) continue;
      const common = majority(group, (u) => u.path);
      const ref = group.find((u) => u.path === common)!;
      for (const u of group) {
        if (u.path === common) continue;
        report(u.node, {
          severity: 'warning',
          span: u.b.memPath!.span(),
          message: `Node '${u.node.name}' backs the fabric '${id}' with ${u.path}, but node '${ref.node.name}' uses ${common}: the two nodes share no memory through it.`,
          related: [{ span: ref.b.memPath!.span(), message: `node '${ref.node.name}': ${common}`, source: ref.node.source }],
        });
      }
    }
  },
};
