// Line charts in plain SVG for the operator console: no library, nothing to download.
// drawChart(svg, series, {now, windowS, format}) draws each series [{label, color, points:
// [[epochSeconds, value], ...]}] over the last windowS seconds before now, with a y axis from 0
// to a rounded maximum and a time axis in minutes back from now.

const NS = 'http://www.w3.org/2000/svg';
const W = 600, H = 170, LEFT = 56, RIGHT = 8, TOP = 18, BOTTOM = 20;

function el(name, attrs, text) {
  const node = document.createElementNS(NS, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

// The smallest of 1, 2, 5 x 10^k at or above value: a y maximum whose halves read well.
export function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

export function drawChart(svg, series, { now, windowS = 300, format = String }) {
  const start = now - windowS;
  const visible = series.map(s => ({ ...s, points: s.points.filter(([t, v]) => t >= start && v !== null) }));
  const top = niceMax(Math.max(0, ...visible.flatMap(s => s.points.map(([, v]) => v))));
  const x = t => LEFT + (t - start) / windowS * (W - LEFT - RIGHT);
  const y = v => H - BOTTOM - v / top * (H - TOP - BOTTOM);
  svg.replaceChildren();
  for (const v of [0, top / 2, top]) {
    svg.append(el('line', { class: v ? 'grid' : 'axis', x1: LEFT, x2: W - RIGHT, y1: y(v), y2: y(v) }));
    svg.append(el('text', { x: LEFT - 4, y: y(v) + 4, 'text-anchor': 'end' }, format(v)));
  }
  for (let m = 0; m * 60 <= windowS; m++) {
    const t = now - m * 60;
    svg.append(el('text', { x: x(t), y: H - 4, 'text-anchor': m ? 'middle' : 'end' }, m ? `-${m}m` : 'now'));
  }
  let legendX = LEFT;
  for (const s of visible) {
    svg.append(el('polyline', { stroke: s.color, 'data-series': s.label, 'data-points': s.points.length,
      points: s.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ') }));
    svg.append(el('rect', { x: legendX, y: 4, width: 10, height: 10, fill: s.color }));
    svg.append(el('text', { x: legendX + 14, y: 13 }, s.label));
    legendX += 24 + 7 * s.label.length;
  }
}
