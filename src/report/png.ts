/**
 * A tiny PNG encoder (8-bit greyscale or RGB, no interlace) for the report's thumbnails: the
 * image rows, each with the "Up" filter, deflated with node:zlib, in chunks with a CRC-32 of our
 * own (zlib.crc32 is newer than Node 20.0).
 */
import { deflateSync } from 'node:zlib';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO-HDLC, as PNG and zlib use it). */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out, 4, 8 + data.length));
  return out;
}

/**
 * PNG bytes of a `width`×`height` image with `channels` 1 (grey) or 3 (RGB) bytes per pixel,
 * row-major, interleaved.
 */
export function encodePng(width: number, height: number, channels: 1 | 3, pixels: Uint8Array): Uint8Array {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) throw new Error(`encodePng: bad size ${width}×${height}`);
  const stride = width * channels;
  if (pixels.length !== stride * height) throw new Error(`encodePng: ${pixels.length} bytes for ${width}×${height}×${channels}`);
  const raw = new Uint8Array((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    const o = y * (stride + 1);
    raw[o] = y === 0 ? 0 : 2; // filter: None for the first row, Up after it
    for (let x = 0; x < stride; x++) {
      const v = pixels[y * stride + x]!;
      raw[o + 1 + x] = y === 0 ? v : (v - pixels[(y - 1) * stride + x]!) & 0xff;
    }
  }
  const ihdr = new Uint8Array(13);
  const hv = new DataView(ihdr.buffer);
  hv.setUint32(0, width);
  hv.setUint32(4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = channels === 1 ? 0 : 2; // colour type: greyscale or truecolour
  // compression 0, filter method 0, interlace 0
  const signature = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
  const parts = [signature, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw, { level: 9 })), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export function pngDataUri(png: Uint8Array): string {
  return `data:image/png;base64,${Buffer.from(png.buffer, png.byteOffset, png.byteLength).toString('base64')}`;
}

/** An 8-bit image: `channels` interleaved bytes per pixel. */
export interface Image8 {
  width: number;
  height: number;
  channels: 1 | 3;
  data: Uint8Array;
}

/**
 * Pixels [C, H, W] in [0, 1] (NCHW order, as `Dataset.get(i).x`) to an 8-bit image: 1 channel →
 * grey, 3 → RGB, anything else → its first channel as grey. Values outside [0, 1] are clipped.
 */
export function imageFromCHW(x: ArrayLike<number>, shape: readonly [number, number, number]): Image8 {
  const [c, h, w] = shape;
  const channels: 1 | 3 = c === 3 ? 3 : 1;
  const data = new Uint8Array(h * w * channels);
  for (let ch = 0; ch < channels; ch++) {
    for (let p = 0; p < h * w; p++) {
      const v = x[ch * h * w + p]!;
      data[p * channels + ch] = Number.isFinite(v) ? Math.round(255 * Math.min(1, Math.max(0, v))) : 0;
    }
  }
  return { width: w, height: h, channels, data };
}

/** Nearest-neighbour enlargement by an integer factor. */
export function upscale(img: Image8, factor: number): Image8 {
  const f = Math.max(1, Math.floor(factor));
  if (f === 1) return img;
  const w = img.width * f;
  const h = img.height * f;
  const c = img.channels;
  const data = new Uint8Array(w * h * c);
  for (let y = 0; y < h; y++) {
    const sy = Math.floor(y / f);
    for (let x = 0; x < w; x++) {
      const s = (sy * img.width + Math.floor(x / f)) * c;
      const d = (y * w + x) * c;
      for (let k = 0; k < c; k++) data[d + k] = img.data[s + k]!;
    }
  }
  return { width: w, height: h, channels: c, data };
}

/** Images side by side on a white background with `gap` pixels between them (RGB if any is RGB). */
export function sideBySide(images: readonly Image8[], gap = 4): Image8 {
  const channels: 1 | 3 = images.some((i) => i.channels === 3) ? 3 : 1;
  const height = Math.max(...images.map((i) => i.height));
  const width = images.reduce((a, i) => a + i.width, 0) + gap * Math.max(0, images.length - 1);
  const data = new Uint8Array(width * height * channels).fill(255);
  let x0 = 0;
  for (const img of images) {
    for (let y = 0; y < img.height; y++) {
      for (let x = 0; x < img.width; x++) {
        for (let k = 0; k < channels; k++) {
          data[(y * width + x0 + x) * channels + k] = img.data[(y * img.width + x) * img.channels + (img.channels === 3 ? k : 0)]!;
        }
      }
    }
    x0 += img.width + gap;
  }
  return { width, height, channels, data };
}

export function imageDataUri(img: Image8): string {
  return pngDataUri(encodePng(img.width, img.height, img.channels, img.data));
}
