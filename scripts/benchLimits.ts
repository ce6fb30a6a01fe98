// The limits `npm run bench:memory` runs an engine under (../shared/docs/BENCHMARKS.md): a cgroup v1
// memory limit (page cache counts against it), optionally a cgroup v1 blkio read throttle on the
// disk holding the model (a consumer NVMe SSD, UFS/eMMC-class flash), and dropping files from the
// page cache before cold runs. Linux, as root; each worker gets groups of its own, removed after.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const MEMORY_ROOT = '/sys/fs/cgroup/memory';
const BLKIO_ROOT = '/sys/fs/cgroup/blkio';

/** Read throttles: bytes/s (and I/O operations/s) of the device holding the model. */
export const THROTTLES = {
  none: null,
  ssd: { readBps: 2e9, readIops: 200_000, label: 'consumer NVMe SSD, 2 GB/s' },
  flash: { readBps: 500e6, readIops: 20_000, label: 'UFS/eMMC-class flash, 500 MB/s' },
} as const;
export type ThrottleName = keyof typeof THROTTLES;

/** Why the limits cannot be set up here, or null when they can. */
export function limitsUnavailable(throttle: ThrottleName): string | null {
  if (process.platform !== 'linux') return 'cgroups are Linux-only';
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'setting cgroup limits needs root';
  if (!fs.existsSync(path.join(MEMORY_ROOT, 'memory.limit_in_bytes'))) return `no cgroup v1 memory controller at ${MEMORY_ROOT}`;
  if (throttle !== 'none' && !fs.existsSync(path.join(BLKIO_ROOT, 'blkio.throttle.read_bps_device')))
    return `no cgroup v1 blkio controller at ${BLKIO_ROOT}`;
  return null;
}

/** "major:minor" of the whole disk holding `file` (throttles apply to disks, not partitions). */
export function diskOf(file: string): string {
  const dev = fs.statSync(file).dev;
  const major = Math.floor(dev / 256) & 0xfff;
  const minor = (dev & 0xff) | (Math.floor(dev / 4096) & 0xfff00);
  const sys = `/sys/dev/block/${major}:${minor}`;
  if (fs.existsSync(path.join(sys, 'partition'))) return fs.readFileSync(path.join(fs.realpathSync(sys), '..', 'dev'), 'utf8').trim();
  return `${major}:${minor}`;
}

export interface LimitGroups {
  memory: string;
  blkio: string | null;
  limitBytes: number;
}

/** Creates the groups for one worker. */
export function createGroups(name: string, limitBytes: number, throttle: ThrottleName, file: string): LimitGroups {
  const memory = path.join(MEMORY_ROOT, name);
  fs.mkdirSync(memory);
  fs.writeFileSync(path.join(memory, 'memory.limit_in_bytes'), String(limitBytes));
  // no swap here; where there is, the limit holds for memory and swap together
  const memsw = path.join(memory, 'memory.memsw.limit_in_bytes');
  if (fs.existsSync(memsw)) fs.writeFileSync(memsw, String(limitBytes));
  let blkio: string | null = null;
  const t = THROTTLES[throttle];
  if (t) {
    blkio = path.join(BLKIO_ROOT, name);
    fs.mkdirSync(blkio);
    const disk = diskOf(file);
    fs.writeFileSync(path.join(blkio, 'blkio.throttle.read_bps_device'), `${disk} ${Math.round(t.readBps)}`);
    fs.writeFileSync(path.join(blkio, 'blkio.throttle.read_iops_device'), `${disk} ${t.readIops}`);
  }
  return { memory, blkio, limitBytes };
}

/** The command that runs `argv` inside the groups (a shell joins them, then execs). */
export function commandInGroups(g: LimitGroups, argv: string[]): { file: string; args: string[] } {
  const script = 'echo $$ > "$1/cgroup.procs" && { [ -z "$2" ] || echo $$ > "$2/cgroup.procs"; } && shift 2 && exec "$@"';
  return { file: '/bin/sh', args: ['-c', script, 'sh', g.memory, g.blkio ?? '', ...argv] };
}

export interface GroupReport {
  limitBytes: number;
  /** the group's peak usage (memory.max_usage_in_bytes: process memory and its page cache) */
  peakBytes: number;
  /** processes the kernel killed for memory in the group */
  oomKills: number;
}

/** The group's figures, then the groups removed (after the worker has exited). */
export async function finishGroups(g: LimitGroups): Promise<GroupReport> {
  const read = (f: string) => fs.readFileSync(path.join(g.memory, f), 'utf8');
  const report: GroupReport = {
    limitBytes: g.limitBytes,
    peakBytes: Number(read('memory.max_usage_in_bytes')),
    oomKills: Number(/^oom_kill (\d+)/m.exec(read('memory.oom_control'))?.[1] ?? 0),
  };
  for (const dir of [g.memory, g.blkio]) {
    if (!dir) continue;
    // the exited worker may take a moment to leave the group
    for (let i = 0; i < 50; i++) {
      try {
        fs.rmdirSync(dir);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
  return report;
}

/** Drops the files' pages from the page cache (GNU dd's nocache: posix_fadvise DONTNEED on the whole file). */
export function dropFromPageCache(files: string[]): void {
  for (const f of files) {
    if (!fs.existsSync(f)) continue;
    execFileSync('dd', [`if=${f}`, 'iflag=nocache', 'count=0', 'status=none']);
  }
}

/**
 * Removes the expert use counts kept beside the layout files (`*.stlayout.uses`): every run then
 * learns which experts are hot from its own tokens (the runs feed the same ones).
 */
export function forgetUsageProfiles(dir: string | undefined): void {
  if (!dir || !fs.existsSync(dir)) return;
  for (const n of fs.readdirSync(dir)) if (n.endsWith('.stlayout.uses')) fs.rmSync(path.join(dir, n), { force: true });
}

/** The layout files in `dir` (to drop them from the page cache with the model). */
export function layoutFiles(dir: string | undefined): string[] {
  if (!dir || !fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((n) => /\.stlayout$/.test(n))
    .map((n) => path.join(dir, n));
}
