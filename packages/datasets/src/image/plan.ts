/**
 * Geometry planning: a chain of crops, pads, resizes and mirrors, folded into as few libvips passes
 * as possible.
 *
 * sharp runs a fixed order of operations in one pass:
 *
 *     decode → auto-orient → extract (pre) → resize → flop → extract (post) → extend (zero pad)
 *
 * A `GeometryPlan` keeps the steps applied so far in that canonical form (a `PlanStage`). Each new
 * step is rewritten to fit the stage where the algebra allows it, without adding a resampling:
 *
 * - crop ∘ crop = one crop; a crop of a mirrored image = the mirror of the mirrored window; a crop
 *   of a padded image = crop of the inside ∩ window, then pad (`extend`) the rest;
 * - mirror commutes with resize (symmetric kernels; up to rounding, and up to the half-pixel offset of
 *   libvips 8.18 upscales, see `RESIZE_KERNEL`) and turns a later window into its mirror image;
 * - only one resize fits a pass, and a resize cannot follow a post-resize crop or a pad. Such a
 *   resize opens a second stage, which sharp runs on the raw output of the first.
 *
 * So the usual chains are one pass: RandomResizedCrop + flip (pre-extract, resize, flop);
 * Resize(shorter) + CenterCrop (resize, post-extract); Resize + RandomCrop(padding) + flip (resize,
 * flop, post-extract, extend). A window entirely inside the padding makes the result black
 * (`blank`), without resampling.
 */
import { InvalidArgumentError } from '@diffmix/core';
import type { Padding, Region } from './types.js';

export interface Size {
  width: number;
  height: number;
}

/** One libvips pass, in sharp's order. `inWidth`/`inHeight` is the (auto-oriented) input size. */
export interface PlanStage {
  inWidth: number;
  inHeight: number;
  /** Crop of the input before resizing. */
  pre: Region | null;
  /** Target size of the resize (fill, no aspect preservation), applied after `pre`. */
  resize: Size | null;
  /** Mirror left↔right after resizing. */
  flop: boolean;
  /** Crop of the resized (and mirrored) image. Only set when `resize` is. */
  post: Region | null;
  /** Zero padding added last. */
  pad: Padding | null;
}

function sameRegion(r: Region, width: number, height: number): boolean {
  return r.left === 0 && r.top === 0 && r.width === width && r.height === height;
}

function checkSize(what: string, width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new InvalidArgumentError(what, `width and height must be positive integers, got ${width}×${height}`);
  }
}

export class GeometryPlan {
  readonly stages: PlanStage[];
  private blankSize: Size | null = null;

  constructor(width: number, height: number) {
    checkSize('size', width, height);
    this.stages = [GeometryPlan.emptyStage(width, height)];
  }

  private static emptyStage(width: number, height: number): PlanStage {
    return { inWidth: width, inHeight: height, pre: null, resize: null, flop: false, post: null, pad: null };
  }

  /** True when every output pixel lies in padding: the result is black, whatever the input. */
  get blank(): boolean {
    return this.blankSize !== null;
  }

  private get last(): PlanStage {
    return this.stages[this.stages.length - 1] as PlanStage;
  }

  /** Size of the image after the pre-extract of `s`. */
  static afterPre(s: PlanStage): Size {
    return s.pre ? { width: s.pre.width, height: s.pre.height } : { width: s.inWidth, height: s.inHeight };
  }

  static afterResize(s: PlanStage): Size {
    return s.resize ?? GeometryPlan.afterPre(s);
  }

  static afterPost(s: PlanStage): Size {
    return s.post ? { width: s.post.width, height: s.post.height } : GeometryPlan.afterResize(s);
  }

  static output(s: PlanStage): Size {
    const inner = GeometryPlan.afterPost(s);
    const p = s.pad;
    return p ? { width: inner.width + p.left + p.right, height: inner.height + p.top + p.bottom } : inner;
  }

  /** Size of the image the steps so far produce. */
  get width(): number {
    return this.blankSize?.width ?? GeometryPlan.output(this.last).width;
  }

  get height(): number {
    return this.blankSize?.height ?? GeometryPlan.output(this.last).height;
  }

  /** Keeps `region` of the current image; parts outside it are zero (black). */
  crop(region: Region): void {
    const { left, top, width, height } = region;
    if (!Number.isInteger(left) || !Number.isInteger(top)) {
      throw new InvalidArgumentError('region', `left and top must be integers, got ${left}, ${top}`);
    }
    checkSize('region', width, height);
    if (this.blankSize) {
      this.blankSize = { width, height };
      return;
    }
    const s = this.last;
    const out = GeometryPlan.output(s);
    if (sameRegion(region, out.width, out.height)) return;
    const inner = GeometryPlan.afterPost(s);
    const padL = s.pad?.left ?? 0;
    const padT = s.pad?.top ?? 0;
    // Window ∩ the non-padded inside, in output coordinates.
    const x0 = Math.max(left, padL);
    const y0 = Math.max(top, padT);
    const x1 = Math.min(left + width, padL + inner.width);
    const y1 = Math.min(top + height, padT + inner.height);
    if (x1 <= x0 || y1 <= y0) {
      this.blankSize = { width, height };
      return;
    }
    this.cropInside(s, { left: x0 - padL, top: y0 - padT, width: x1 - x0, height: y1 - y0 });
    const pad: Padding = { left: x0 - left, top: y0 - top, right: left + width - x1, bottom: top + height - y1 };
    s.pad = pad.left || pad.top || pad.right || pad.bottom ? pad : null;
  }

  /** A crop that lies inside the image before padding. */
  private cropInside(s: PlanStage, c: Region): void {
    if (s.resize) {
      const r = s.resize;
      const base = s.post ?? { left: 0, top: 0, width: r.width, height: r.height };
      const post = { left: base.left + c.left, top: base.top + c.top, width: c.width, height: c.height };
      s.post = sameRegion(post, r.width, r.height) ? null : post;
      return;
    }
    // No resize yet: the image is flop?(pre(input)); a window on a mirror is the mirror of the mirrored window.
    const p = GeometryPlan.afterPre(s);
    const cx = s.flop ? p.width - c.left - c.width : c.left;
    const base = s.pre ?? { left: 0, top: 0, width: s.inWidth, height: s.inHeight };
    const pre = { left: base.left + cx, top: base.top + c.top, width: c.width, height: c.height };
    s.pre = sameRegion(pre, s.inWidth, s.inHeight) ? null : pre;
  }

  /** Resamples the current image to `width`×`height` (aspect ratio not kept). */
  resize(width: number, height: number): void {
    checkSize('resize', width, height);
    if (this.blankSize) {
      this.blankSize = { width, height };
      return;
    }
    const s = this.last;
    const out = GeometryPlan.output(s);
    if (out.width === width && out.height === height) return;
    if (s.resize || s.post || s.pad) {
      const next = GeometryPlan.emptyStage(out.width, out.height);
      next.resize = { width, height };
      this.stages.push(next);
      return;
    }
    s.resize = { width, height };
  }

  /** Mirrors the current image left↔right. */
  flop(): void {
    if (this.blankSize) return;
    const s = this.last;
    s.flop = !s.flop;
    if (s.post) {
      const r = GeometryPlan.afterResize(s);
      s.post = { ...s.post, left: r.width - s.post.left - s.post.width };
    }
    if (s.pad) s.pad = { ...s.pad, left: s.pad.right, right: s.pad.left };
  }

  /** Number of libvips passes the plan needs (0 when it is blank after the first). */
  get passes(): number {
    return this.stages.length;
  }
}
