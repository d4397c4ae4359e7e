/**
 * The report's figures as standalone SVG and PNG files (for papers), rendered by Vega's Node
 * renderer: Vega-Lite → Vega → `View.toSVG()`. PNG is the SVG rasterised by @resvg/resvg-js (a
 * prebuilt Rust/wasm-free native addon shipped inside its npm package; the `canvas` package that
 * `View.toCanvas()` needs compiles from source against cairo and is not required). Sliders and
 * selectors take their default values: the last checkpoint, the first pair, the first output.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../data/atomic.js';
import type { Figure } from './figures.js';

export interface ExportedFigure {
  id: string;
  svg: string;
  png: string | null;
}

export interface ExportResult {
  figures: ExportedFigure[];
  /** Why PNG files were not written (the rasteriser could not be loaded), or null. */
  pngUnavailable: string | null;
  warnings: string[];
}

type Rasterise = (svg: string, scale: number) => Uint8Array;

async function loadRasteriser(): Promise<Rasterise | string> {
  try {
    const { Resvg } = await import('@resvg/resvg-js');
    return (svg, scale) =>
      new Resvg(svg, {
        background: 'white',
        fitTo: { mode: 'zoom', value: scale },
        font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
      })
        .render()
        .asPng();
  } catch (e) {
    return `@resvg/resvg-js could not be loaded (${(e as Error).message.split('\n')[0]})`;
  }
}

/** Render one Vega-Lite spec to SVG in Node; Vega's and Vega-Lite's warnings go to `warnings`. */
export async function renderSvg(spec: Record<string, unknown>, warnings: string[] = [], id = 'figure'): Promise<string> {
  const vega = await import('vega');
  const vl = await import('vega-lite');
  const warn = (...args: unknown[]) => warnings.push(`${id}: ${args.map(String).join(' ')}`);
  // a Vega logger (vega-util's LoggerInterface) that collects warnings and errors
  const logger = {
    level(this: unknown, ...a: unknown[]) {
      return a.length ? this : 2;
    },
    warn(this: unknown, ...a: unknown[]) {
      warn(...a);
      return this;
    },
    error(this: unknown, ...a: unknown[]) {
      warn(...a);
      return this;
    },
    info(this: unknown) {
      return this;
    },
    debug(this: unknown) {
      return this;
    },
  };
  const { spec: vgSpec } = vl.compile(spec as never, { logger: logger as never });
  const view = new vega.View(vega.parse(vgSpec), { renderer: 'none' });
  view.logger(logger as never);
  await view.runAsync();
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

/** Write `<dir>/<id>.svg` (always) and `<dir>/<id>.png` (when the rasteriser loads) for each figure. */
export async function exportFigures(figures: readonly Figure[], dir: string, opts: { scale?: number } = {}): Promise<ExportResult> {
  mkdirSync(dir, { recursive: true });
  const raster = await loadRasteriser();
  const warnings: string[] = [];
  const out: ExportedFigure[] = [];
  for (const f of figures) {
    if (!f.spec) continue;
    const svg = await renderSvg(f.spec, warnings, f.id);
    const svgPath = join(dir, `${f.id}.svg`);
    writeFileAtomic(svgPath, svg);
    let pngPath: string | null = null;
    if (typeof raster !== 'string') {
      pngPath = join(dir, `${f.id}.png`);
      writeFileAtomic(pngPath, raster(svg, opts.scale ?? 2));
    }
    out.push({ id: f.id, svg: svgPath, png: pngPath });
  }
  return { figures: out, pngUnavailable: typeof raster === 'string' ? raster : null, warnings };
}
