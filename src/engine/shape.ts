/** Shape arithmetic: sizes, row-major strides, NumPy broadcasting, axis normalisation. */
export type Shape = readonly number[];

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

export function shapesEqual(a: Shape, b: Shape): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function fmtShape(s: Shape): string {
  return `[${s.join(',')}]`;
}

/** NumPy broadcasting of two shapes; throws with both shapes named when incompatible. */
export function broadcastShapes(a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`shapes ${fmtShape(a)} and ${fmtShape(b)} do not broadcast (axis ${i}: ${da} vs ${db})`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Normalise possibly negative axes against a rank; sorted, unique. */
export function normAxes(axes: number | readonly number[] | undefined, rank: number): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : axes;
  const out = list.map((a) => {
    const b = a < 0 ? a + rank : a;
    if (b < 0 || b >= rank || !Number.isInteger(b)) throw new Error(`axis ${a} out of range for rank ${rank}`);
    return b;
  });
  return [...new Set(out)].sort((x, y) => x - y);
}

export function assertShape(s: Shape, what = 'shape'): void {
  for (const d of s) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`${what} ${fmtShape(s)} has an invalid dimension ${d}`);
  }
}
