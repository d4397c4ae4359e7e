/** Thumbnails of data-set examples as PNG data URIs, with a short label for each. */
import type { Dataset } from '../data/dataset.js';
import { imageDataUri, imageFromCHW, sideBySide, upscale, type Image8 } from './png.js';

export interface Thumb {
  index: number;
  /** PNG data URI at the image's own resolution. */
  uri: string;
  /** The image enlarged to about 84 px (for tooltips, which show images at their own size). */
  big: Image8;
  /** The example's label(s), e.g. "Dress" or "Smiling, Young". */
  label: string;
}

/** The label text of targets y: the one set label of a one-of-K target, else the set labels (at most 3). */
export function labelText(y: ArrayLike<number>, names: readonly string[]): string {
  const on: string[] = [];
  for (let j = 0; j < y.length; j++) if (y[j]! > 0.5) on.push(names[j] ?? `output ${j}`);
  if (on.length === 0) return 'no label set';
  return on.length <= 3 ? on.join(', ') : `${on.slice(0, 3).join(', ')} +${on.length - 3}`;
}

export class ThumbCache {
  private readonly cache = new Map<number, Thumb | null>();
  constructor(private readonly ds: Dataset | null) {}

  get(i: number): Thumb | null {
    if (!this.ds) return null;
    if (this.cache.has(i)) return this.cache.get(i)!;
    let t: Thumb | null = null;
    if (Number.isInteger(i) && i >= 0 && i < this.ds.length) {
      try {
        const ex = this.ds.get(i);
        const img = imageFromCHW(ex.x, this.ds.inputShape);
        t = {
          index: i,
          uri: imageDataUri(img),
          big: upscale(img, Math.max(1, Math.floor(84 / Math.max(img.width, img.height)))),
          label: labelText(ex.y, this.ds.labelNames),
        };
      } catch {
        t = null; // an unreadable example (e.g. a missing image file) just has no thumbnail
      }
    }
    this.cache.set(i, t);
    return t;
  }

  /** The enlarged image as a data URI (for a tooltip), or null. */
  bigUri(i: number): string | null {
    const t = this.get(i);
    return t ? imageDataUri(t.big) : null;
  }

  /** The two examples side by side (for a pair's tooltip), or null when either is missing. */
  pairUri(i: number, j: number): string | null {
    const a = this.get(i);
    const b = this.get(j);
    return a && b ? imageDataUri(sideBySide([a.big, b.big], 6)) : null;
  }
}
