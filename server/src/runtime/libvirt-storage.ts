/**
 * Files on another libvirt host, through the only file access a libvirt
 * connection gives: its storage API (virsh pool-* and vol-*, i.e.
 * virStoragePoolCreateXML, virStorageVolGetInfo, virStorageVolCreateXML,
 * virStorageVolUpload). A file's directory is opened as a transient `dir`
 * pool, which is destroyed again afterwards (destroying a transient pool
 * leaves its directory and files alone). A directory that already belongs to
 * a pool of the host is used through that pool and left as it was.
 *
 * The rules are the ones of this host's backing files (cluster.ts): an
 * existing file is never resized or recreated (libvirt refuses to create a
 * volume that exists), a missing one is created sparse.
 */
import { createHash } from 'node:crypto';
import { virsh, virshError } from '../host/libvirt';

const TIMEOUT = 120_000;

export interface WantedFile {
  path: string;
  size: bigint;
  /** The nodes that map it (for messages). */
  nodes: string[];
}

function split(path: string): { dir: string; base: string } {
  const i = path.lastIndexOf('/');
  return { dir: path.slice(0, i) || '/', base: path.slice(i + 1) };
}

/** Run fn with a pool over dir on the host of uri (build: make the directory when it is missing). */
export async function withDirPool<T>(uri: string, dir: string, build: boolean, fn: (pool: string) => Promise<T>, env: NodeJS.ProcessEnv = process.env): Promise<T> {
  const name = `mf-${createHash('sha256').update(`${uri}\u0000${dir}`).digest('hex').slice(0, 16)}`;
  let pool = name;
  let owned = true;
  const r = await virsh(uri, ['pool-create-as', name, 'dir', '--target', dir, ...(build ? ['--build'] : [])], env, TIMEOUT);
  if (r.status !== 0) {
    const other = /conflict with pool: '([^']+)'/.exec(r.stderr);
    if (other) [pool, owned] = [other[1], false];
    else if (!/already exists/.test(r.stderr)) throw new Error(`${dir}: ${virshError(r.stderr)}`);
    // (a pool of ours left by a process that was killed: used, then destroyed)
    const refresh = await virsh(uri, ['pool-refresh', pool], env, TIMEOUT);
    if (refresh.status !== 0) throw new Error(`${dir}: ${virshError(refresh.stderr)}`);
  }
  try {
    return await fn(pool);
  } finally {
    if (owned) await virsh(uri, ['pool-destroy', name], env, TIMEOUT);
  }
}

/** A volume's type and size, or undefined when there is no such file. */
async function volInfo(uri: string, pool: string, base: string, env: NodeJS.ProcessEnv): Promise<{ type: string; size: bigint } | undefined> {
  const r = await virsh(uri, ['vol-info', '--pool', pool, base, '--bytes'], env, TIMEOUT);
  if (r.status !== 0) {
    if (/Storage volume not found|no storage vol/.test(r.stderr)) return undefined;
    throw new Error(virshError(r.stderr));
  }
  const type = /^Type:\s+(\S+)/m.exec(r.stdout)?.[1] ?? 'unknown';
  const cap = /^Capacity:\s+(\d+) bytes/m.exec(r.stdout)?.[1];
  if (cap === undefined) throw new Error(`vol-info printed no capacity for ${base}: ${r.stdout.trim()}`);
  return { type, size: BigInt(cap) };
}

/**
 * Backing files on the host of uri: the ones that are missing, and errors
 * for a file of another size or kind (memfabric never resizes a file).
 */
export async function checkRemoteFiles(uri: string, files: WantedFile[], env: NodeJS.ProcessEnv = process.env): Promise<{ missing: WantedFile[]; errors: string[] }> {
  const missing: WantedFile[] = [];
  const errors: string[] = [];
  const byDir = new Map<string, WantedFile[]>();
  for (const f of files) {
    const { dir } = split(f.path);
    byDir.set(dir, [...(byDir.get(dir) ?? []), f]);
  }
  for (const [dir, fs] of byDir) {
    try {
      await withDirPool(uri, dir, false, async (pool) => {
        for (const f of fs) {
          const info = await volInfo(uri, pool, split(f.path).base, env);
          if (!info) missing.push(f);
          else if (info.type !== 'file') errors.push(`${f.path} on ${uri}: backing file of ${f.nodes.join(', ')} is not a regular file (libvirt says ${info.type})`);
          else if (info.size !== f.size) errors.push(`${f.path} on ${uri}: backing file of ${f.nodes.join(', ')} is ${info.size} bytes, the plan needs ${f.size} bytes (${f.size > info.size ? 'too small' : 'too large'}); memfabric never resizes an existing file: fix the size in the topology or move the file away`);
        }
      }, env);
    } catch (e) {
      errors.push(`backing file${fs.length > 1 ? 's' : ''} ${fs.map((f) => f.path).join(', ')} of ${[...new Set(fs.flatMap((f) => f.nodes))].join(', ')} on ${uri}: ${(e as Error).message}`);
    }
  }
  return { missing, errors };
}

/** Create missing backing files on the host of uri, sparse (allocation 0), never an existing one. */
export async function createRemoteFiles(uri: string, files: WantedFile[], env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const created: string[] = [];
  for (const f of files) {
    const { dir, base } = split(f.path);
    await withDirPool(uri, dir, false, async (pool) => {
      const r = await virsh(uri, ['vol-create-as', pool, base, f.size.toString(), '--allocation', '0', '--format', 'raw'], env, TIMEOUT);
      if (r.status !== 0) throw new Error(`cannot create backing file ${f.path} on ${uri}: ${virshError(r.stderr)}`);
    }, env);
    created.push(f.path);
  }
  return created;
}

/** Where guest files (kernel, initrd) are kept on another host: one directory per content. */
export const REMOTE_IMAGE_ROOT = '/var/lib/libvirt/memfabric/images';
/** The volume written last: the uploads before it are whole. */
const COMPLETE = 'complete';

/**
 * Copy files (a guest's kernel and initrd) to the host of uri with
 * vol-upload, into REMOTE_IMAGE_ROOT/<sha256 of their contents>/, unless a
 * previous upload of the same contents finished there. Returns each local
 * path's remote path, and whether anything was uploaded.
 */
export async function uploadGuestFiles(uri: string, files: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ paths: Map<string, string>; uploaded: boolean; dir: string }> {
  const { readFileSync, statSync } = await import('node:fs');
  const h = createHash('sha256');
  const names: string[] = [];
  for (const f of files) {
    h.update(readFileSync(f));
    const base = f.slice(f.lastIndexOf('/') + 1);
    names.push(names.includes(base) ? `${names.length}-${base}` : base);
  }
  const dir = `${REMOTE_IMAGE_ROOT}/${h.digest('hex').slice(0, 24)}`;
  const paths = new Map(files.map((f, i) => [f, `${dir}/${names[i]}`]));
  const uploaded = await withDirPool(uri, dir, true, async (pool) => {
    if (await volInfo(uri, pool, COMPLETE, env)) return false;
    for (let i = 0; i < files.length; i++) {
      // An upload cut short before: its volume goes, and is made again.
      if (await volInfo(uri, pool, names[i], env)) {
        const del = await virsh(uri, ['vol-delete', '--pool', pool, names[i]], env, TIMEOUT);
        if (del.status !== 0) throw new Error(`cannot replace ${dir}/${names[i]} on ${uri}: ${virshError(del.stderr)}`);
      }
      const make = await virsh(uri, ['vol-create-as', pool, names[i], String(statSync(files[i]).size), '--format', 'raw'], env, TIMEOUT);
      if (make.status !== 0) throw new Error(`cannot create ${dir}/${names[i]} on ${uri}: ${virshError(make.stderr)}`);
      const up = await virsh(uri, ['vol-upload', '--pool', pool, names[i], files[i]], env, 10 * TIMEOUT);
      if (up.status !== 0) throw new Error(`cannot upload ${files[i]} to ${dir}/${names[i]} on ${uri}: ${virshError(up.stderr)}`);
    }
    const done = await virsh(uri, ['vol-create-as', pool, COMPLETE, '0', '--format', 'raw'], env, TIMEOUT);
    if (done.status !== 0) throw new Error(`cannot mark ${dir} complete on ${uri}: ${virshError(done.stderr)}`);
    return true;
  }, env);
  return { paths, uploaded, dir };
}

/** Whether a file exists on the host of uri (a user's disk image, which is never copied). */
export async function remoteFileExists(uri: string, path: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const { dir, base } = split(path);
  return withDirPool(uri, dir, false, async (pool) => (await volInfo(uri, pool, base, env)) !== undefined, env);
}
