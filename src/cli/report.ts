/** `lie-bracket report`: the self-contained HTML report of a run directory, and its figures as SVG/PNG. */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { UserError } from '../errors.js';
import { exportFigures } from '../report/export.js';
import { collectReport } from '../report/report.js';
import { writeFileAtomic } from '../data/atomic.js';

export interface ReportFlags {
  out?: string;
  png?: string;
  title?: string;
  json?: boolean;
}

export interface ReportCommandResult {
  out: string;
  figures: string[];
  exported: { id: string; svg: string; png: string | null }[];
  pngUnavailable: string | null;
  notes: string[];
}

export async function runReport(runDir: string, f: ReportFlags): Promise<ReportCommandResult> {
  if (!existsSync(runDir) || !statSync(runDir).isDirectory()) throw new UserError(`${runDir}: run directory not found`);
  if (!existsSync(join(runDir, 'run.json')) && !existsSync(join(runDir, 'sweep'))) {
    throw new UserError(`${runDir}: not a run directory (no run.json and no sweep/); create one with lie-bracket train --out ${runDir}`);
  }
  if (f.out !== undefined && f.out.trim() === '') throw new UserError('--out needs a file name');
  if (f.png !== undefined && f.png.trim() === '') throw new UserError('--png needs a directory');
  const out = f.out ?? join(runDir, 'report.html');
  if (existsSync(out) && statSync(out).isDirectory()) throw new UserError(`--out ${out}: is a directory; give a file name`);
  const r = collectReport(runDir, f.title !== undefined ? { title: f.title } : {});
  writeFileAtomic(out, r.html);
  const result: ReportCommandResult = {
    out,
    figures: r.figures.filter((x) => x.spec).map((x) => x.id),
    exported: [],
    pngUnavailable: null,
    notes: r.files.notes,
  };
  if (f.png !== undefined) {
    const e = await exportFigures(r.figures, f.png);
    result.exported = e.figures;
    result.pngUnavailable = e.pngUnavailable;
  }
  return result;
}

export function reportCommand(): Command {
  return new Command('report')
    .description('write report.html for a run directory: one self-contained page (opens from disk, no network) with every figure')
    .argument('<run-dir>', 'run directory (from lie-bracket train, with sweep/ from lie-bracket sweep)')
    .option('--out <file>', 'where to write the HTML (default: <run-dir>/report.html)')
    .option(
      '--png <dir>',
      "also write each figure as SVG and PNG into DIR (Vega's Node renderer; PNG rasterised with @resvg/resvg-js, at 2× scale; if that package cannot load on this platform, SVG only)",
    )
    .option('--title <text>', 'page title')
    .option('--json', 'print one JSON object instead of text: {out, figures, exported, pngUnavailable, notes}')
    .addHelpText(
      'after',
      `
Reads (each optional): run.json, metrics.jsonl, sweep/sweep.json, sweep/results.jsonl,
sweep/summary.json, sweep/allpairs.jsonl, verify.json. Missing inputs become notes in the page.

Examples:
  lie-bracket report runs/demo
  lie-bracket report runs/demo --out /tmp/demo.html --png figures/
  lie-bracket report runs/demo --json
`,
    )
    .action(async (runDir: string, f: ReportFlags) => {
      const r = await runReport(runDir, f);
      if (f.json) {
        process.stdout.write(`${JSON.stringify(r)}\n`);
        return;
      }
      const lines = [`report: ${resolve(r.out)} (${r.figures.length} figures: ${r.figures.join(', ') || 'none'})`];
      for (const n of r.notes) lines.push(`  note: ${n}`);
      if (f.png !== undefined) {
        lines.push(`figures: ${r.exported.length} SVG${r.pngUnavailable ? '' : ' + PNG'} in ${resolve(f.png)}`);
        if (r.pngUnavailable) lines.push(`  PNG not written: ${r.pngUnavailable}`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
