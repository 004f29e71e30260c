// Small SVG charts for the platform's pages (peermetrics dashboard, Viblast statistics): no
// library to fetch, no build step. window.OwtCharts.{line, bars, timeline} each return a <div>
// holding a title and an <svg>; every drawn series carries data-series and data-points.
"use strict";
(() => {
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#2874a6", "#c0392b", "#27ae60", "#8e44ad", "#d68910", "#17a589", "#5d6d7e", "#a04000"];
  const WIDTH = 340, HEIGHT = 150, LEFT = 40, BOTTOM = 30, TOP = 8, RIGHT = 8;

  function svgNode(tag, attrs = {}) {
    const node = document.createElementNS(NS, tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    return node;
  }

  function frame(title, empty) {
    const box = document.createElement("div");
    box.className = "chart";
    const heading = document.createElement("h4");
    heading.textContent = title;
    box.append(heading);
    if (empty) {
      const note = document.createElement("p");
      note.className = "muted";
      note.textContent = "no data";
      box.append(note);
      return [box, null];
    }
    const svg = svgNode("svg", {width: WIDTH, height: HEIGHT, viewBox: `0 0 ${WIDTH} ${HEIGHT}`});
    box.append(svg);
    return [box, svg];
  }

  function text(svg, x, y, content, anchor = "start") {
    const node = svgNode("text", {x, y, "font-size": 10, "text-anchor": anchor, fill: "#555"});
    node.textContent = content;
    svg.append(node);
  }

  function short(value) {
    if (Math.abs(value) >= 1e9) return `${+(value / 1e9).toPrecision(3)}G`;
    if (Math.abs(value) >= 1e6) return `${+(value / 1e6).toPrecision(3)}M`;
    if (Math.abs(value) >= 1e3) return `${+(value / 1e3).toPrecision(3)}k`;
    return `${+value.toPrecision(3)}`;
  }

  function clock(ms, span = 0) {
    const date = new Date(ms);
    if (span > 86400e3) return date.toLocaleString([], {month: "short", day: "numeric", hour: "2-digit", minute: "2-digit"});
    return date.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: "2-digit"});
  }

  function legend(svg, names) {
    let x = LEFT;
    names.forEach((name, i) => {
      svg.append(svgNode("rect", {x, y: HEIGHT - 10, width: 8, height: 8, fill: COLORS[i % COLORS.length]}));
      text(svg, x + 11, HEIGHT - 2, name);
      x += 16 + 6 * String(name).length;
    });
  }

  // series: [{name, values: [{x: ms epoch or number, y: number|null}]}]; null y breaks the line,
  // and the x axis spans every value given, so a range with gaps keeps its width.
  function line(title, series, {time = true} = {}) {
    const points = series.flatMap(s => s.values.filter(v => v.y != null));
    const [box, svg] = frame(title, !points.length);
    if (!svg) return box;
    const xs = series.flatMap(s => s.values.map(v => v.x)), ys = points.map(p => p.y);
    const x0 = Math.min(...xs), x1 = Math.max(...xs), y1 = Math.max(...ys) || 1;
    const sx = x => LEFT + (x1 === x0 ? 0.5 : (x - x0) / (x1 - x0)) * (WIDTH - LEFT - RIGHT);
    const sy = y => HEIGHT - BOTTOM - (y / y1) * (HEIGHT - BOTTOM - TOP);
    svg.append(svgNode("line", {x1: LEFT, y1: sy(0), x2: WIDTH - RIGHT, y2: sy(0), stroke: "#ccc"}));
    text(svg, LEFT - 4, TOP + 8, short(y1), "end");
    text(svg, LEFT - 4, sy(0), "0", "end");
    text(svg, LEFT, HEIGHT - BOTTOM + 12, time ? clock(x0, x1 - x0) : short(x0));
    text(svg, WIDTH - RIGHT, HEIGHT - BOTTOM + 12, time ? clock(x1, x1 - x0) : short(x1), "end");
    series.forEach((s, i) => {
      // One polyline per unbroken run, so a gap (null) shows as a gap.
      const runs = [[]];
      for (const v of s.values) {
        if (v.y == null) { if (runs[runs.length - 1].length) runs.push([]); }
        else runs[runs.length - 1].push(v);
      }
      const drawn = runs.filter(run => run.length);
      const group = svgNode("g", {"data-series": s.name, "data-points": drawn.reduce((n, run) => n + run.length, 0)});
      for (const run of drawn) {
        const color = COLORS[i % COLORS.length];
        if (run.length === 1) group.append(svgNode("circle", {cx: sx(run[0].x), cy: sy(run[0].y), r: 2, fill: color}));
        else group.append(svgNode("polyline", {
          fill: "none", stroke: color, "stroke-width": 1.5,
          points: run.map(v => `${sx(v.x).toFixed(1)},${sy(v.y).toFixed(1)}`).join(" "),
        }));
      }
      svg.append(group);
    });
    legend(svg, series.map(s => s.name));
    return box;
  }

  // labels: category names; series: [{name, values: [number per label]}], stacked.
  function bars(title, labels, series) {
    const totals = labels.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] || 0), 0));
    const [box, svg] = frame(title, !totals.some(t => t > 0));
    if (!svg) return box;
    const y1 = Math.max(...totals);
    const slot = (WIDTH - LEFT - RIGHT) / labels.length;
    const sy = y => (y / y1) * (HEIGHT - BOTTOM - TOP);
    text(svg, LEFT - 4, TOP + 8, short(y1), "end");
    text(svg, LEFT - 4, HEIGHT - BOTTOM, "0", "end");
    series.forEach((s, k) => {
      const group = svgNode("g", {"data-series": s.name, "data-points": s.values.filter(v => v > 0).length});
      labels.forEach((_, i) => {
        const below = series.slice(0, k).reduce((sum, other) => sum + (other.values[i] || 0), 0);
        const value = s.values[i] || 0;
        if (!value) return;
        const rect = svgNode("rect", {
          x: LEFT + i * slot + 1, width: Math.max(1, slot - 2),
          y: HEIGHT - BOTTOM - sy(below + value), height: sy(value), fill: COLORS[k % COLORS.length],
        });
        const tip = svgNode("title");
        tip.textContent = `${labels[i]}: ${s.name} ${value}`;
        rect.append(tip);
        group.append(rect);
      });
      svg.append(group);
    });
    // As many labels as fit (about 6 px a character), evenly spaced.
    const widest = Math.max(...labels.map(label => String(label).length)) * 6 + 6;
    const every = Math.max(1, Math.ceil(widest / slot));
    labels.forEach((label, i) => { if (i % every === 0) text(svg, LEFT + i * slot + 1, HEIGHT - BOTTOM + 12, label); });
    if (series.length > 1) legend(svg, series.map(s => s.name));
    return box;
  }

  // rows: [{name, start: ms, end: ms|null (still on)}]: one bar per row, e.g. who was in a call when.
  function timeline(title, rows) {
    const [box, svg] = frame(title, !rows.length);
    if (!svg) return box;
    const now = Date.now();
    const x0 = Math.min(...rows.map(r => r.start)), x1 = Math.max(...rows.map(r => r.end ?? now));
    const height = Math.max(HEIGHT, TOP + rows.length * 18 + BOTTOM);
    svg.setAttribute("height", height);
    svg.setAttribute("viewBox", `0 0 ${WIDTH} ${height}`);
    const left = 90;
    const sx = x => left + (x1 === x0 ? 0 : (x - x0) / (x1 - x0)) * (WIDTH - left - RIGHT);
    const group = svgNode("g", {"data-series": "participants", "data-points": rows.length});
    rows.forEach((row, i) => {
      const y = TOP + i * 18;
      text(svg, left - 4, y + 11, String(row.name).slice(0, 14), "end");
      group.append(svgNode("rect", {
        x: sx(row.start), y, height: 12, width: Math.max(2, sx(row.end ?? now) - sx(row.start)),
        fill: row.end == null ? "#2874a6" : "#7fb3d5",
      }));
    });
    svg.append(group);
    text(svg, left, height - BOTTOM + 12, clock(x0));
    text(svg, WIDTH - RIGHT, height - BOTTOM + 12, clock(x1), "end");
    return box;
  }

  window.OwtCharts = {line, bars, timeline, colors: COLORS};
})();
