/**
 * One CPU for what the benches compare (scripts/bench.mjs, scripts/bench-boot.mjs).
 * The two CPUs of this virtual machine are not always alike: for minutes at a
 * time one runs the same code 1.8 times slower than the other (saxes on the
 * 40-node cluster: 0.42 ms on one, 0.78 ms on the other, each pinned with
 * taskset; equal again later). Two runs compared with each other run on the
 * same CPU, or the comparison measures which CPU each got.
 */
import { spawnSync } from 'node:child_process';

/** The CPUs this process may run on (taskset's list, such as 0-1, and the numbers), or undefined without taskset. */
export function allowedCpus() {
  const r = spawnSync('taskset', ['-cp', String(process.pid)], { encoding: 'utf8' });
  const list = r.status === 0 ? /:\s*([0-9,-]+)\s*$/.exec(r.stdout)?.[1] : undefined;
  if (!list) return undefined;
  const cpus = list.split(',').flatMap((part) => {
    const [a, b = a] = part.split('-').map(Number);
    return Array.from({ length: b - a + 1 }, (_, i) => a + i);
  });
  return { list, cpus };
}

/**
 * Of cpus, the one that runs a fixed loop fastest (each pinned with taskset,
 * three times), with each one's time; cpu undefined with fewer than two.
 */
export function fastestCpu(cpus) {
  if (!cpus || cpus.length < 2) return { cpu: undefined, times: [] };
  const loop = 'let x = 0; const t0 = performance.now(); for (let i = 0; i < 5e7; i++) x = (x * 31 + i) | 0; process.stdout.write(String(performance.now() - t0 + (x & 0)));';
  const times = cpus.map(() => Infinity);
  for (let round = 0; round < 3; round++)
    cpus.forEach((c, i) => {
      const r = spawnSync('taskset', ['-c', String(c), process.execPath, '-e', loop], { encoding: 'utf8' });
      if (r.status === 0) times[i] = Math.min(times[i], Number(r.stdout));
    });
  const best = times.indexOf(Math.min(...times));
  return { cpu: Number.isFinite(times[best]) ? cpus[best] : undefined, times: times.map((ms, i) => ({ cpu: cpus[i], ms })) };
}

/** "a fixed loop took 306 ms on CPU 0, 305 ms on CPU 1". */
export const loopTimes = (times) => `a fixed loop took ${times.map((t) => `${t.ms.toFixed(0)} ms on CPU ${t.cpu}`).join(', ')}`;
