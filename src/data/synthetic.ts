/**
 * Synthetic "faces": small procedurally generated colour images (3×S×S, default S = 32) with six
 * binary attributes of known structure, for experiments that must tell *mutually exclusive*
 * labels apart from labels that are *merely hard*. Full description: docs/synthetic-data.md.
 *
 * Attributes (label order), each with marginal rate 0.4:
 *   black_hair, brown_hair  exclusive group 'hair' (allowNone): exactly one of black (0.4), brown
 *                           (0.4) or none (0.2). A hair band at the top of the image, drawn in one
 *                           of two nearby dark colours that differ only in chroma (brown = black
 *                           + δ red − δ blue), under a random hair shade and global brightness.
 *   glasses                 a faint dark bar across the eyes (independent)
 *   mole                    a small dark disc on the cheek (independent)
 *   bg_patch                a slightly lighter background patch, top right (independent)
 *   stripe                  a faint light band across the bottom (independent)
 *
 * Matched difficulty: every cue is a fixed-position perturbation of the same L2 energy E: the
 * image with black hair differs from the same image with brown hair by exactly as much (‖Δ‖₂ = E,
 * before the brightness factor, noise and clipping) as the image with glasses differs from the
 * same image without, and likewise for mole, bg_patch and stripe. Cues on smaller regions are
 * proportionally more contrasted (δ = E / √(pixels · Σ_c pattern_c²)). Against the i.i.d. pixel
 * noise (σ = 0.05) a detector that knows the cue's place thus has the same d′ = E/σ for "black vs
 * brown" as for "glasses vs none". Presence of hair at all ("none" vs a colour) is easy on purpose.
 * E = 0.02·√(3·S²/16) / difficulty: at difficulty 1 a cue is worth a 0.02 contrast over a sixteenth
 * of the image in all three channels (less than half the noise σ per pixel). Measured: a ridge
 * linear classifier on 8000 examples is 97–98% right on each of the five distinctions (black vs
 * brown, each attribute present vs absent) at difficulty 1, 88–91% at 1.5, 80–83% at 2.
 *
 * Nuisances shared by all cues: background grey level, tint and vertical gradient; skin tone and
 * face size (an ellipse); hair shade; a global brightness factor b ∈ [0.85, 1.15] (scales every
 * cue alike); Gaussian pixel noise; clipping to [0, 1].
 *
 * Determinism: example i of a split is a pure function of (seed, split, i): its generator is a
 * `Rng` seeded with fmix32(fmix32(seed) ^ (2i + [split = test])), a bijection of (split, i) for a
 * fixed seed, so no two examples of one seed — within a split or across train and test — share a
 * random stream, and any index can be generated alone. Labels are drawn first, so `targets(i)`
 * costs a few draws, not an image.
 *
 * Ambiguity q (option `ambiguity`, default 0, at most 0.5): the *label* of an example with hair is
 * swapped to the other colour iff u < q, where u is one uniform draw from a stream of the example's
 * own (`ambiguitySeed`), separate from the one that draws its image. The pixels never depend on q;
 * q = 0 is exactly the data set without the option; the examples swapped at q are a subset of
 * those swapped at any q′ > q. The posterior of the hair group given the pixels is then about
 * (1 − q, q) — a held-out NLL floor of H(q) nats per hair example.
 */
import { Rng } from '../engine/random.js';
import { UserError } from '../errors.js';
import { checkIndex, hashParts, type Dataset, type LabelGroup } from './dataset.js';

export const SYNTHETIC_LABELS = ['black_hair', 'brown_hair', 'glasses', 'mole', 'bg_patch', 'stripe'] as const;
export type SyntheticLabel = (typeof SYNTHETIC_LABELS)[number];

export const SYNTHETIC_GROUPS: readonly LabelGroup[] = [{ name: 'hair', members: ['black_hair', 'brown_hair'], allowNone: true }];

/** Target marginal rate of each label; hair is none with probability 1 − 0.4 − 0.4 = 0.2. */
export const SYNTHETIC_RATES: Readonly<Record<SyntheticLabel, number>> = {
  black_hair: 0.4,
  brown_hair: 0.4,
  glasses: 0.4,
  mole: 0.4,
  bg_patch: 0.4,
  stripe: 0.4,
};

/** The independent cues, in label order after the hair group. */
const CUES = ['glasses', 'mole', 'bg_patch', 'stripe'] as const;
type Cue = (typeof CUES)[number];

export const SYNTHETIC_DEFAULTS = { seed: 0, size: 32, difficulty: 1, ambiguity: 0, trainLength: 4000, testLength: 1000 } as const;

/** Largest allowed `ambiguity`: at 0.5 the hair colour label is a coin flip given the pixels. */
export const SYNTHETIC_MAX_AMBIGUITY = 0.5;

/** Per-pixel cue contrast at difficulty 1 over a reference area of S²/16 pixels × 3 channels. */
const BASE_CONTRAST = 0.02;
const NOISE_STD = 0.05;
const HAIR_BASE = [0.26, 0.22, 0.2] as const;
const SKIN_BASE = [1.0, 0.78, 0.66] as const;
/** Per-channel sign pattern of each cue (hair: brown − black). */
const PATTERN: Readonly<Record<Cue | 'hair', readonly [number, number, number]>> = {
  hair: [1, 0, -1],
  glasses: [-1, -1, -1],
  mole: [-1, -1, -1],
  bg_patch: [1, 1, 1],
  stripe: [1, 1, 1],
};

const GENERATOR_VERSION = 'lie-bracket/synthetic/v1';

/** Bytes of rendered images a SyntheticDataset keeps (256 MiB: the seed's 4,000 training images at 3×64×64 take 188 MiB). */
export const SYNTHETIC_CACHE_BYTES = 256 * 2 ** 20;

export interface SyntheticOptions {
  /** Seed of the whole data set (integer 0…2³²−1; default 0). */
  seed?: number;
  /** Examples in the opened split (default 4000 for train, 1000 for test). */
  length?: number;
  /** Image side S (default 32, at least 16). */
  size?: number;
  /** Cue energy is divided by this (default 1; 2 = half as visible). */
  difficulty?: number;
  /**
   * q in [0, 0.5] (default 0): each example with hair has its hair *label* swapped to the other
   * colour with probability q (the image is unchanged). Same q for both splits.
   */
  ambiguity?: number;
}

/** Everything random about one example; `renderSynthetic` turns it into pixels. */
export interface SyntheticLatent {
  /** 0: no hair, 1: black, 2: brown — the hair that is drawn. */
  hair: 0 | 1 | 2;
  /** Whether the hair *label* is the other colour (ambiguity; never for no hair). Labels only. */
  swapped: boolean;
  cues: Record<Cue, boolean>;
  brightness: number;
  background: [number, number, number];
  gradient: number;
  skin: [number, number, number];
  faceRx: number;
  faceRy: number;
  hairShade: number;
  noiseSeed: number;
}

/** Pixel index lists (y·S + x) of each cue's region, and each cue's per-pixel contrast δ. */
export interface SyntheticGeometry {
  size: number;
  energy: number;
  regions: Readonly<Record<Cue | 'hair', Int32Array>>;
  delta: Readonly<Record<Cue | 'hair', number>>;
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The 32-bit Rng seed of example i of a split. */
export function exampleSeed(seed: number, split: 'train' | 'test', i: number): number {
  return fmix32((fmix32(seed >>> 0) ^ ((2 * i + (split === 'test' ? 1 : 0)) >>> 0)) >>> 0);
}

const AMBIGUITY_SALT = 0x5bd1e995;

/**
 * The 32-bit Rng seed of example i's ambiguity stream: a stream of its own (not the image's), so
 * the image never depends on the ambiguity, and a bijection of (split, i) for a fixed seed.
 */
export function ambiguitySeed(seed: number, split: 'train' | 'test', i: number): number {
  return fmix32((exampleSeed(seed, split, i) ^ AMBIGUITY_SALT) >>> 0);
}

/** The uniform u in [0, 1) of example i: its hair label is swapped iff it has hair and u < q. */
export function ambiguityUniform(seed: number, split: 'train' | 'test', i: number): number {
  return new Rng(ambiguitySeed(seed, split, i)).random();
}

/** Draw one example's latent variables (labels first; `swapped` false: no ambiguity). */
export function sampleLatent(rng: Rng): SyntheticLatent {
  const u = rng.random();
  const hair: 0 | 1 | 2 = u < SYNTHETIC_RATES.black_hair ? 1 : u < SYNTHETIC_RATES.black_hair + SYNTHETIC_RATES.brown_hair ? 2 : 0;
  const cues = {} as Record<Cue, boolean>;
  for (const c of CUES) cues[c] = rng.random() < SYNTHETIC_RATES[c];
  const grey = rng.uniform(0.35, 0.65);
  const background: [number, number, number] = [grey + rng.uniform(-0.06, 0.06), grey + rng.uniform(-0.06, 0.06), grey + rng.uniform(-0.06, 0.06)];
  const gradient = rng.uniform(-0.15, 0.15);
  const tone = rng.uniform(0.6, 0.95);
  const skin: [number, number, number] = [tone * SKIN_BASE[0], tone * SKIN_BASE[1], tone * SKIN_BASE[2]];
  const faceRx = rng.uniform(0.9, 1.1);
  const faceRy = rng.uniform(0.9, 1.1);
  const hairShade = rng.uniform(0.8, 1.25);
  const brightness = rng.uniform(0.85, 1.15);
  const noiseSeed = rng.nextU32();
  return { hair, swapped: false, cues, brightness, background, gradient, skin, faceRx, faceRy, hairShade, noiseSeed };
}

/** The hair label of a latent: its drawn hair, or the other colour when swapped (none stays none). */
export function hairLabel(l: SyntheticLatent): 0 | 1 | 2 {
  return l.hair === 0 || !l.swapped ? l.hair : l.hair === 1 ? 2 : 1;
}

/** The label vector of a latent, in `SYNTHETIC_LABELS` order. */
export function latentTargets(l: SyntheticLatent): Float32Array {
  const hair = hairLabel(l);
  return Float32Array.from([hair === 1 ? 1 : 0, hair === 2 ? 1 : 0, ...CUES.map((c) => (l.cues[c] ? 1 : 0))]);
}

const geometryCache = new Map<string, SyntheticGeometry>();

/** Cue regions and contrasts for images of side `size` at `difficulty` (cached). */
export function syntheticGeometry(size: number, difficulty: number): SyntheticGeometry {
  const key = `${size}/${difficulty}`;
  const hit = geometryCache.get(key);
  if (hit) return hit;
  const S = size;
  const r = (f: number) => Math.round(f * S);
  const rect = (y0: number, h: number, x0: number, w: number): Int32Array => {
    const out: number[] = [];
    for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) out.push(y * S + x);
    return Int32Array.from(out);
  };
  const disc = (cx: number, cy: number, rad: number): Int32Array => {
    const out: number[] = [];
    for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) if ((x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= rad * rad) out.push(y * S + x);
    return Int32Array.from(out);
  };
  const band = (f: number) => Math.max(1, r(f));
  const regions: Record<Cue | 'hair', Int32Array> = {
    hair: rect(r(0.08), band(0.22), r(0.25), band(0.5)),
    glasses: rect(r(0.46), band(0.06), r(0.28), band(0.44)),
    mole: disc(0.36 * S, 0.66 * S, 0.08 * S),
    bg_patch: rect(r(0.06), band(0.38), r(0.78), band(0.19)),
    stripe: rect(r(0.88), band(0.06), 0, S),
  };
  const owner = new Int8Array(S * S);
  for (const [name, idx] of Object.entries(regions)) {
    if (idx.length === 0) throw new UserError(`synthetic: image size ${S} is too small for the '${name}' cue; use a size of at least 16`);
    for (const p of idx) {
      if (owner[p] !== 0) throw new Error(`synthetic: cue regions overlap at pixel ${p} for size ${S}`);
      owner[p] = 1;
    }
  }
  const energy = (BASE_CONTRAST * Math.sqrt((3 * S * S) / 16)) / difficulty;
  const delta = {} as Record<Cue | 'hair', number>;
  for (const k of Object.keys(regions) as (Cue | 'hair')[]) {
    const pat = PATTERN[k];
    delta[k] = energy / Math.sqrt(regions[k].length * (pat[0] ** 2 + pat[1] ** 2 + pat[2] ** 2));
  }
  const g: SyntheticGeometry = { size: S, energy, regions, delta };
  geometryCache.set(key, g);
  return g;
}

/**
 * Render a latent as 3×S×S float32 pixels (NCHW, one image). `noise: false` and `clip: false`
 * leave out the pixel noise and the clipping to [0, 1] (for checking the cue energies).
 */
export function renderSynthetic(l: SyntheticLatent, geom: SyntheticGeometry, opts: { noise?: boolean; clip?: boolean } = {}): Float32Array {
  const S = geom.size;
  const P = S * S;
  const img = new Float32Array(3 * P);
  const cx = 0.5 * S;
  const cy = 0.55 * S;
  const rx = 0.25 * S * l.faceRx;
  const ry = 0.32 * S * l.faceRy;
  for (let y = 0; y < S; y++) {
    const gy = l.gradient * (S === 1 ? 0 : y / (S - 1) - 0.5);
    const dy = (y + 0.5 - cy) / ry;
    for (let x = 0; x < S; x++) {
      const dx = (x + 0.5 - cx) / rx;
      const face = dx * dx + dy * dy <= 1;
      const p = y * S + x;
      for (let c = 0; c < 3; c++) img[c * P + p] = face ? l.skin[c]! : l.background[c]! + gy;
    }
  }
  if (l.hair !== 0) {
    const d = l.hair === 2 ? geom.delta.hair : 0;
    for (const p of geom.regions.hair) {
      for (let c = 0; c < 3; c++) img[c * P + p] = l.hairShade * HAIR_BASE[c]! + d * PATTERN.hair[c]!;
    }
  }
  for (const cue of CUES) {
    if (!l.cues[cue]) continue;
    const d = geom.delta[cue];
    const pat = PATTERN[cue];
    for (const p of geom.regions[cue]) for (let c = 0; c < 3; c++) img[c * P + p]! += d * pat[c]!;
  }
  const noise = opts.noise ?? true;
  const clip = opts.clip ?? true;
  const rng = noise ? new Rng(l.noiseSeed) : undefined;
  for (let k = 0; k < img.length; k++) {
    let v = img[k]! * l.brightness;
    if (rng) v += NOISE_STD * rng.normal();
    img[k] = clip ? (v < 0 ? 0 : v > 1 ? 1 : v) : v;
  }
  return img;
}

function checkInt(what: string, v: number, lo: number, hi: number): number {
  if (!Number.isSafeInteger(v) || v < lo || v > hi) throw new UserError(`synthetic: ${what} must be an integer from ${lo} to ${hi}, got ${v}`);
  return v;
}

export class SyntheticDataset implements Dataset {
  readonly name = 'synthetic';
  readonly split: 'train' | 'test';
  readonly length: number;
  readonly inputShape: readonly [number, number, number];
  readonly labelNames: readonly string[] = SYNTHETIC_LABELS;
  readonly labelKind = 'binary' as const;
  readonly groups: readonly LabelGroup[] = SYNTHETIC_GROUPS;
  readonly seed: number;
  readonly size: number;
  readonly difficulty: number;
  /** q: probability that a hair example's label is the other colour. */
  readonly ambiguity: number;
  private readonly geom: SyntheticGeometry;
  private fp: string | undefined;
  /** Rendered images by index, while they fit in SYNTHETIC_CACHE_BYTES (see `get`). */
  private readonly rendered = new Map<number, Float32Array>();
  private renderedBytes = 0;

  constructor(split: 'train' | 'test', opts: SyntheticOptions = {}) {
    if (split !== 'train' && split !== 'test') throw new UserError(`synthetic: unknown split '${String(split)}' (choices: train, test)`);
    this.split = split;
    this.seed = checkInt('seed', opts.seed ?? SYNTHETIC_DEFAULTS.seed, 0, 0xffffffff);
    this.length = checkInt('length', opts.length ?? (split === 'train' ? SYNTHETIC_DEFAULTS.trainLength : SYNTHETIC_DEFAULTS.testLength), 0, 2 ** 31 - 1);
    this.size = checkInt('size', opts.size ?? SYNTHETIC_DEFAULTS.size, 16, 1024);
    const difficulty = opts.difficulty ?? SYNTHETIC_DEFAULTS.difficulty;
    if (!Number.isFinite(difficulty) || difficulty <= 0) throw new UserError(`synthetic: difficulty must be a positive number, got ${difficulty}`);
    this.difficulty = difficulty;
    const ambiguity = opts.ambiguity ?? SYNTHETIC_DEFAULTS.ambiguity;
    if (!(ambiguity >= 0 && ambiguity <= SYNTHETIC_MAX_AMBIGUITY)) {
      throw new UserError(`synthetic: ambiguity must be a number from 0 to ${SYNTHETIC_MAX_AMBIGUITY}, got ${ambiguity}`);
    }
    this.ambiguity = ambiguity;
    this.inputShape = [3, this.size, this.size];
    this.geom = syntheticGeometry(this.size, this.difficulty);
  }

  /** The latent variables of example i (labels, nuisances, noise seed, label swap). */
  latent(i: number): SyntheticLatent {
    checkIndex(this, i);
    const l = sampleLatent(new Rng(exampleSeed(this.seed, this.split, i)));
    if (this.ambiguity > 0 && l.hair !== 0) l.swapped = ambiguityUniform(this.seed, this.split, i) < this.ambiguity;
    return l;
  }

  /** Cue regions and contrasts of this data set's images. */
  geometry(): SyntheticGeometry {
    return this.geom;
  }

  /**
   * Example i: its image and targets, in fresh arrays. The images of the first examples asked
   * for are kept (up to SYNTHETIC_CACHE_BYTES per data set) and copied out on later calls: a
   * training run draws each example many times (the seed's 5,000 steps of 32 from 4,000: 40
   * times), and rendering a 3×64×64 image (one normal deviate per value) costs about as much as
   * a tenth of a training step's convolutions. The values are the same either way.
   */
  get(i: number): { x: Float32Array; y: Float32Array } {
    const l = this.latent(i);
    const kept = this.rendered.get(i);
    if (kept !== undefined) return { x: kept.slice(), y: latentTargets(l) };
    const x = renderSynthetic(l, this.geom);
    if (this.renderedBytes + x.byteLength <= SYNTHETIC_CACHE_BYTES) {
      this.rendered.set(i, x.slice());
      this.renderedBytes += x.byteLength;
    }
    return { x, y: latentTargets(l) };
  }

  targets(i: number): Float32Array {
    return latentTargets(this.latent(i));
  }

  fingerprint(): string {
    if (this.fp === undefined) {
      const parts: (string | Float32Array)[] = [
        GENERATOR_VERSION,
        JSON.stringify({
          split: this.split,
          seed: this.seed,
          length: this.length,
          size: this.size,
          difficulty: this.difficulty,
          // Only when set, so that the fingerprints of q = 0 data sets stay what they were.
          ...(this.ambiguity > 0 ? { ambiguity: this.ambiguity } : {}),
        }),
      ];
      // Pin the generator's implementation too: a changed renderer changes the first image.
      if (this.length > 0) parts.push(this.get(0).x);
      this.fp = hashParts(parts);
    }
    return this.fp;
  }
}

export function openSynthetic(split: 'train' | 'test', opts: SyntheticOptions = {}): SyntheticDataset {
  return new SyntheticDataset(split, opts);
}
