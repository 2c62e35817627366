// Live trajectory: appends each optimization step pushed by the server (server-sent events).
(function () {
  const me = document.currentScript;
  const run = me.dataset.run;
  const points = [];
  document.querySelectorAll("#chart circle title").forEach(function (t) {
    const m = t.textContent.match(/^([\d.]+): ([\d.]+)$/);
    if (m) points.push([+m[1], +m[2]]);
  });
  function redraw() {
    const svg = document.querySelector("#chart svg");
    if (!svg || !points.length) return;
    const W = 520, H = 260, P = 40;
    const xs = points.map(p => p[0]).concat([0]);
    const xmax = Math.max.apply(null, xs) || 1;
    const sx = x => P + x / xmax * (W - 10 - P), sy = y => (H - P) - y * (H - P - 10);
    let line = svg.querySelector("polyline.line");
    if (!line) {
      line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
      line.setAttribute("class", "line");
      svg.appendChild(line);
    }
    line.setAttribute("points", points.map(p => sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1)).join(" "));
  }
  function addRow(step) {
    const row = document.createElement("tr");
    [step.step, step.event, step.candidate_idx ?? "", step.incumbent_score == null ? "-" : step.incumbent_score.toFixed(3),
     step.calls, step.tokens, step.seconds].forEach(function (value) {
      const cell = document.createElement("td");
      cell.textContent = String(value);  // text, never markup
      row.appendChild(cell);
    });
    document.querySelector("#steps tbody").appendChild(row);
    const n = document.getElementById("n-steps");
    n.textContent = String(+n.textContent + 1);
  }
  const source = new EventSource("/runs/" + run + "/events?after=" + me.dataset.after);
  source.addEventListener("step", function (e) {
    const step = JSON.parse(e.data);
    addRow(step);
    if (step.incumbent_score != null) { points.push([step.step, step.incumbent_score]); redraw(); }
  });
  source.addEventListener("done", function (e) {
    source.close();
    document.getElementById("status").textContent = JSON.parse(e.data).status;
    setTimeout(function () { location.reload(); }, 500);  // shows the finished family tree
  });
})();
