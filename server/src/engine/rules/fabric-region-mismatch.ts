import { Finding, Rule } from './rule';
import { NodeModel } from '../model/model';
import { hexHuman, SharedFile, sharedFiles } from './util';
import { keepOn, keptOn } from '../kept';

/** A shared file of a known size. */
interface Use extends SharedFile {
  size: bigint;
}
/** A use, and the node it is in. */
interface NodeUse {
  node: NodeModel;
  u: Use;
}

/** The value most users agree on (ties: the first seen), taken as the intended one. */
function majority<K>(uses: NodeUse[], key: (u: Use) => K): K {
  const counts = new Map<K, number>();
  for (const { u } of uses) counts.set(key(u), (counts.get(key(u)) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1])[0][0];
}

/**
 * A node's shared file backends of a known size (and those an ivshmem-plain
 * maps), in backend order: a function of the node model alone, so kept per
 * model, on the model (engine/kept.ts; an analysis that keeps a node's model
 * skips this: engine/incremental.ts).
 */
const USES = Symbol('fabric uses');
function usesOf(node: NodeModel): { uses: Use[]; shared: Use[] } {
  let r = keptOn<{ uses: Use[]; shared: Use[] }>(node, USES);
  if (r) return r;
  r = { uses: [], shared: [] };
  // (the summary's own entries: data, no model, never changed)
  for (const f of sharedFiles(node)) {
    if (f.size === undefined) continue;
    r.uses.push(f as Use);
    if (f.fabric) r.shared.push(f as Use);
  }
  return keepOn(node, USES, r);
}

/** A number per model object, so that a list of models has a signature that keeps none of them alive. */
const MODEL_ID = Symbol('model id');
let nextModelId = 0;
function signature(nodes: NodeModel[]): string {
  let s = '';
  for (const n of nodes) {
    let id = keptOn<number>(n, MODEL_ID);
    if (id === undefined) id = keepOn(n, MODEL_ID, nextModelId++);
    s += `${id},`;
  }
  return s;
}

/** The previous call's models (by signature) and findings, by node index: findings are a function of the models alone. */
let last: { signature: string; found: [number, Finding][] } | undefined;

/**
 * The keys (paths, fabric ids) whose uses disagree: more than one node and
 * more than one value. One pass, no group lists: a cluster of 2000 nodes
 * with 6000 shared files has none, and is checked again on every keystroke.
 */
function disagreeing(nodes: NodeModel[], which: 'uses' | 'shared', key: (u: Use) => string, value: (u: Use) => bigint | string): Set<string> {
  const first = new Map<string, { node: NodeModel; value: bigint | string; nodes: boolean; values: boolean }>();
  const out = new Set<string>();
  for (const node of nodes) {
    for (const u of usesOf(node)[which]) {
      const k = key(u);
      const f = first.get(k);
      if (!f) first.set(k, { node, value: value(u), nodes: false, values: false });
      else {
        if (node !== f.node) f.nodes = true;
        if (value(u) !== f.value) f.values = true;
        if (f.nodes && f.values) out.add(k);
      }
    }
  }
  // (In the order the keys first appear.)
  return out.size ? new Set([...first.keys()].filter((k) => out.has(k))) : out;
}

/** The uses of each of keys, in node order. */
function groups(nodes: NodeModel[], which: 'uses' | 'shared', key: (u: Use) => string, keys: Set<string>): Map<string, NodeUse[]> {
  const by = new Map<string, NodeUse[]>([...keys].map((k) => [k, []]));
  if (!keys.size) return by;
  for (const node of nodes) for (const u of usesOf(node)[which]) by.get(key(u))?.push({ node, u });
  return by;
}

export const rule: Rule = {
  code: 'fabric-region-mismatch',
  severity: 'error',
  summary:
    'Nodes that share a fabric region must open the same host file with the same size: a node with a larger size fails to start once the file exists, one with a smaller size sees only part of the region, and nodes whose region of the same name is backed by different files share nothing.',
  enforcedBy: "backing store size 0x100000 does not match 'size' option 0x400000 (for the larger one, once the file exists)",
  checkCluster({ nodes, report }) {
    // The same models as last time (an edit elsewhere, or none): the same findings.
    const sig = signature(nodes);
    if (last?.signature === sig) {
      for (const [i, f] of last.found) report(nodes[i], f);
      return;
    }
    const found: [number, Finding][] = [];
    last = { signature: sig, found };
    let index: Map<NodeModel, number> | undefined;
    const inner = report;
    report = (n, f) => {
      index ??= new Map(nodes.map((x, i) => [x, i]));
      found.push([index.get(n!)!, f]);
      inner(n, f);
    };
    // Same file, different sizes.
    const byPath = groups(nodes, 'uses', (u) => u.path, disagreeing(nodes, 'uses', (u) => u.path, (u) => u.size));
    for (const [path, group] of byPath) {
      const common = majority(group, (u) => u.size);
      const ref = group.find(({ u }) => u.size === common)!;
      for (const { node, u } of group) {
        if (u.size === common) continue;
        report(node, {
          span: u.sizeSpan!,
          message: `Node '${node.name}' maps the shared file ${path} with size ${hexHuman(u.size)}, but node '${ref.node.name}' uses ${hexHuman(common)}: ${u.size > common ? 'this node will fail to start once the file exists at the smaller size' : 'this node sees only part of the region'}.`,
          related: [{ span: ref.u.sizeSpan!, message: `node '${ref.node.name}': size ${hexHuman(common)}`, source: ref.node.source }],
        });
      }
    }
    // Same fabric (an ivshmem backend id), different files.
    const byId = groups(nodes, 'shared', (u) => u.id, disagreeing(nodes, 'shared', (u) => u.id, (u) => u.path));
    for (const [id, group] of byId) {
      const common = majority(group, (u) => u.path);
      const ref = group.find(({ u }) => u.path === common)!;
      for (const { node, u } of group) {
        if (u.path === common) continue;
        report(node, {
          severity: 'warning',
          span: u.memPathSpan,
          message: `Node '${node.name}' backs the fabric '${id}' with ${u.path}, but node '${ref.node.name}' uses ${common}: the two nodes share no memory through it.`,
          related: [{ span: ref.u.memPathSpan, message: `node '${ref.node.name}': ${common}`, source: ref.node.source }],
        });
      }
    }
  },
};
