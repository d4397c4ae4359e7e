/**
 * Test helper for the experiments' pipeline tests: run experiments/run.mjs with `args` (the
 * scripts use the built package, dist/, which is rebuilt first when missing or older than src/).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..');

/** The newest modification time of the library sources below `dir` (not tests, not AssemblyScript). */
function newestSource(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newestSource(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.endsWith('.as.ts')) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

/** Rebuild dist/ if stale, then run the experiments runner; its exit status and stderr. */
export function runExperiments(args: readonly string[], timeoutMs: number): { status: number | null; stderr: string } {
  const built = join(ROOT, 'dist', 'index.js');
  if (!existsSync(built) || statSync(built).mtimeMs < newestSource(join(ROOT, 'src'))) {
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json')], {
      cwd: ROOT,
      stdio: 'pipe',
    });
  }
  const r = spawnSync(process.execPath, [join(ROOT, 'experiments', 'run.mjs'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status, stderr: r.stderr };
}
