// Small canvas line charts, no dependencies: a static chart of a few series over time, and a
// scrolling chart that new points are pushed onto.

export const PALETTE = ['#2f6fdf', '#e0662b', '#23a26d', '#b03fb5', '#c9a227', '#4bb5c9', '#d14a6a', '#777777'];

/** Sizes the canvas's backing store to its CSS box times devicePixelRatio; returns the 2-D
 *  context scaled to CSS pixels and the CSS width and height. */
function prepare(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const rect = canvas.getBoundingClientRect();
  const w = Math.max(50, Math.round(rect.width || canvas.width));
  const h = Math.max(50, Math.round(rect.height || canvas.height));
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return { ctx, w, h };
}

function niceRange(lo, hi) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [-1, 1];
  if (hi - lo < 1e-6) {
    const m = (hi + lo) / 2;
    return [m - 0.5, m + 0.5];
  }
  const pad = (hi - lo) * 0.08;
  return [lo - pad, hi + pad];
}

function fmt(v) {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-2 || a >= 1e4)) return v.toExponential(1);
  return v.toFixed(a < 1 ? 2 : 1);
}

/** Frame, y gridlines with labels, x labels; returns the plot box. */
function axes(ctx, w, h, [ylo, yhi], [xlo, xhi], xLabel) {
  const box = { l: 46, r: w - 10, t: 10, b: h - 24 };
  const css = getComputedStyle(document.documentElement);
  const grid = css.getPropertyValue('--chart-grid').trim() || '#e3e6ea';
  const text = css.getPropertyValue('--chart-text').trim() || '#667';
  ctx.font = '11px system-ui, sans-serif';
  ctx.lineWidth = 1;
  ctx.strokeStyle = grid;
  ctx.fillStyle = text;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (let i = 0; i <= 4; i++) {
    const v = ylo + ((yhi - ylo) * i) / 4;
    const y = box.b - ((box.b - box.t) * i) / 4;
    ctx.beginPath();
    ctx.moveTo(box.l, Math.round(y) + 0.5);
    ctx.lineTo(box.r, Math.round(y) + 0.5);
    ctx.stroke();
    ctx.fillText(fmt(v), box.l - 5, y);
  }
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  ctx.fillText(String(Math.round(xlo)), box.l, box.b + 5);
  ctx.fillText(String(Math.round(xhi)), box.r - 8, box.b + 5);
  if (xLabel) ctx.fillText(xLabel, (box.l + box.r) / 2, box.b + 5);
  return box;
}

function legend(ctx, box, names) {
  ctx.font = '11px system-ui, sans-serif';
  ctx.textAlign = 'left';
  ctx.textBaseline = 'middle';
  let x = box.l + 8;
  names.forEach((n, i) => {
    ctx.fillStyle = PALETTE[i % PALETTE.length];
    ctx.fillRect(x, box.t + 6, 10, 3);
    ctx.fillStyle = getComputedStyle(document.documentElement).getPropertyValue('--chart-text').trim() || '#667';
    ctx.fillText(n, x + 14, box.t + 8);
    x += ctx.measureText(n).width + 28;
  });
}

/**
 * Draws `series` (arrays of numbers, all over the same x = 0..n-1) as lines.
 * opts: {names, xLabel, message}: `message` is drawn instead when there is nothing to plot.
 */
export function drawLines(canvas, series, { names = [], xLabel = '', message = '' } = {}) {
  const { ctx, w, h } = prepare(canvas);
  const n = Math.max(0, ...series.map((s) => s.length));
  if (!series.length || n === 0) {
    ctx.fillStyle = '#889';
    ctx.font = '13px system-ui, sans-serif';
    ctx.textAlign = 'center';
    ctx.fillText(message || 'no data yet', w / 2, h / 2);
    return;
  }
  let lo = Infinity, hi = -Infinity;
  for (const s of series) for (const v of s) if (Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const yr = niceRange(lo, hi);
  const box = axes(ctx, w, h, yr, [0, n - 1], xLabel);
  const sx = (i) => box.l + ((box.r - box.l) * i) / Math.max(1, n - 1);
  const sy = (v) => box.b - ((box.b - box.t) * (v - yr[0])) / (yr[1] - yr[0]);
  series.forEach((s, k) => {
    ctx.strokeStyle = PALETTE[k % PALETTE.length];
    ctx.lineWidth = 1.6;
    ctx.beginPath();
    s.forEach((v, i) => (i === 0 ? ctx.moveTo(sx(i), sy(v)) : ctx.lineTo(sx(i), sy(v))));
    ctx.stroke();
    if (n === 1) {
      ctx.fillStyle = ctx.strokeStyle;
      ctx.fillRect(sx(0) - 2, sy(s[0]) - 2, 4, 4);
    }
  });
  legend(ctx, box, names);
}

/**
 * A scrolling line chart: `push(values)` appends one point to each series, keeping the last
 * `window` points; redraws at most once per animation frame.
 */
export class ScrollingChart {
  constructor(canvas, { series = 1, names = [], window = 240, xLabel = 'step' } = {}) {
    this.canvas = canvas;
    this.names = names;
    this.window = window;
    this.xLabel = xLabel;
    this.reset(series);
  }

  reset(series = this.data.length, names = this.names) {
    this.data = Array.from({ length: series }, () => []);
    this.names = names;
    this.total = 0;
    this.pending = false;
    this.draw();
  }

  push(values) {
    values.forEach((v, k) => {
      const s = this.data[k];
      if (!s) return;
      s.push(v);
      if (s.length > this.window) s.shift();
    });
    this.total += 1;
    if (!this.pending) {
      this.pending = true;
      requestAnimationFrame(() => {
        this.pending = false;
        this.draw();
      });
    }
  }

  draw() {
    const { ctx, w, h } = prepare(this.canvas);
    const n = this.data.length ? this.data[0].length : 0;
    if (n === 0) {
      ctx.fillStyle = '#889';
      ctx.font = '13px system-ui, sans-serif';
      ctx.textAlign = 'center';
      ctx.fillText('press Start to stream', w / 2, h / 2);
      return;
    }
    let lo = Infinity, hi = -Infinity;
    for (const s of this.data) for (const v of s) if (Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    const yr = niceRange(lo, hi);
    const first = this.total - n;
    const box = axes(ctx, w, h, yr, [first, first + this.window - 1], this.xLabel);
    const sx = (i) => box.l + ((box.r - box.l) * i) / Math.max(1, this.window - 1);
    const sy = (v) => box.b - ((box.b - box.t) * (v - yr[0])) / (yr[1] - yr[0]);
    this.data.forEach((s, k) => {
      ctx.strokeStyle = PALETTE[k % PALETTE.length];
      ctx.lineWidth = 1.6;
      ctx.beginPath();
      s.forEach((v, i) => (i === 0 ? ctx.moveTo(sx(i), sy(v)) : ctx.lineTo(sx(i), sy(v))));
      ctx.stroke();
    });
    legend(ctx, box, this.names);
  }
}
