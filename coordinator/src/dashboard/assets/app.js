// wsload dashboard: follows /api/events (server-sent events) and draws inline SVG.
// No library: the page must work offline, from the coordinator binary alone.
"use strict";
(function () {
  const COLORS = ["#1f6feb", "#d9480f", "#2f9e44", "#ae3ec9", "#f08c00", "#0c8599", "#e03131"];
  const MAX_POINTS = 600; // points drawn per series; buckets keep their maximum
  const m = location.pathname.match(/^\/runs\/([^/]+)/);
  const wanted = m ? decodeURIComponent(m[1]) : "";
  let points = [], status = null, runId = "", stopArmed = 0;
  const $ = (id) => document.getElementById(id);
  const fmt = (n) => (n >= 1e6 ? (n / 1e6).toFixed(2) + "M" : n >= 1e4 ? (n / 1e3).toFixed(1) + "k" : String(Math.round(n)));
  const ms = (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
  const bytes = (b) => (b >= 1 << 30 ? (b / (1 << 30)).toFixed(2) + " GiB" : (b / (1 << 20)).toFixed(1) + " MiB");
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
  const clock = (s) => { s = Math.round(s); return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0"); };

  // Keeps at most MAX_POINTS buckets; each bucket keeps the maximum of every series.
  function downsample(xs, series) {
    const n = xs.length;
    if (n <= MAX_POINTS) return { xs, series };
    const per = Math.ceil(n / MAX_POINTS), ox = [], os = series.map(() => []);
    for (let i = 0; i < n; i += per) {
      ox.push(xs[i]);
      series.forEach((s, k) => { let v = 0; for (let j = i; j < Math.min(n, i + per); j++) v = Math.max(v, s.values[j]); os[k].push(v); });
    }
    return { xs: ox, series: series.map((s, k) => ({ name: s.name, values: os[k] })) };
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v))), r = v / p;
    return (r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10) * p;
  }

  // Draws series [{name, values}] against xs (seconds) into the svg with this id.
  function chart(id, xs, series) {
    const svg = $(id);
    if (!svg) return;
    const W = Math.max(svg.clientWidth || 400, 200), H = svg.clientHeight || 200;
    const L = 48, R = 8, T = 18, B = 20, w = W - L - R, h = H - T - B;
    const d = downsample(xs, series);
    const maxX = Math.max(1, xs.length ? xs[xs.length - 1] : 1);
    let maxY = 0;
    d.series.forEach((s) => s.values.forEach((v) => { if (v > maxY) maxY = v; }));
    maxY = niceMax(maxY);
    const X = (t) => L + (w * t) / maxX, Y = (v) => T + h - (h * v) / maxY;
    let out = "";
    for (let i = 0; i <= 4; i++) {
      const v = (maxY * i) / 4, y = Y(v).toFixed(1);
      out += `<line x1="${L}" x2="${W - R}" y1="${y}" y2="${y}" stroke="#e6e9ed"/>`;
      out += `<text x="${L - 4}" y="${(+y + 4).toFixed(1)}" text-anchor="end">${v >= 1000 ? fmt(v) : +v.toFixed(2)}</text>`;
    }
    for (let i = 0; i <= 4; i++) {
      const t = (maxX * i) / 4;
      out += `<text x="${X(t).toFixed(1)}" y="${H - 4}" text-anchor="middle">${clock(t)}</text>`;
    }
    d.series.forEach((s, k) => {
      const c = COLORS[k % COLORS.length];
      const pts = s.values.map((v, i) => X(d.xs[i]).toFixed(1) + "," + Y(v).toFixed(1)).join(" ");
      if (pts) out += `<polyline class="series" fill="none" stroke="${c}" stroke-width="1.6" points="${pts}"/>`;
      out += `<rect x="${L + 6 + k * 92}" y="3" width="10" height="10" fill="${c}"/><text x="${L + 20 + k * 92}" y="12">${esc(s.name)}</text>`;
    });
    if (!xs.length) out += `<text class="empty" x="${L + w / 2}" y="${T + h / 2}" text-anchor="middle">waiting for the first second…</text>`;
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.innerHTML = out;
  }

  function drawCharts() {
    const xs = points.map((p) => p.t);
    const col = (f) => points.map(f);
    chart("chart-sessions", xs, [{ name: "active", values: col((p) => p.active) }]);
    chart("chart-opens", xs, [{ name: "opened/s", values: col((p) => p.opened) }, { name: "failed/s", values: col((p) => p.failed) }]);
    chart("chart-messages", xs, [{ name: "sent/s", values: col((p) => p.sent) }, { name: "received/s", values: col((p) => p.recv) }]);
    chart("chart-rtt", xs, ["p50", "p90", "p99", "p99.9"].map((n, i) => ({ name: n, values: col((p) => p.rtt[i]) })));
    chart("chart-connect", xs, [{ name: "p50", values: col((p) => p.connect[0]) }, { name: "p99", values: col((p) => p.connect[1]) }]);
    chart("chart-errors", xs, [{ name: "errors/s", values: col((p) => p.errors) }, { name: "events/s", values: col((p) => p.events) }]);
    const names = [];
    points.forEach((p) => Object.keys(p.steps || {}).forEach((n) => { if (!names.includes(n)) names.push(n); }));
    $("steps-figure").hidden = names.length === 0 && (!status || !status.steps || status.steps.length === 0);
    chart("chart-steps", xs, names.map((n) => ({ name: n, values: col((p) => (p.steps[n] ? p.steps[n].p99 : 0)) })));
  }

  function counter(id, v, text) { const e = $(id); e.dataset.value = v; e.textContent = text === undefined ? fmt(v) : text; }

  function rows(id, html) { $(id).tBodies[0].innerHTML = html || `<tr><td colspan="9" class="muted">none</td></tr>`; }

  function drawStatus() {
    const s = status;
    if (!s) return;
    runId = s.run_id || runId;
    if (s.run_id) {
      $("run-id").textContent = s.run_id;
      $("c-state").textContent = s.state_text || s.state;
      $("c-state").className = "state " + s.state;
      $("target").textContent = s.target + " · " + fmt(s.sessions_planned) + " sessions planned";
      counter("c-active", s.active_sessions);
      counter("c-opened", s.sessions_opened);
      counter("c-failures", s.connect_failures);
      counter("c-sent", s.messages_sent);
      counter("c-recv", s.responses);
      counter("c-errors", Object.values(s.errors || {}).reduce((a, b) => a + b, 0));
      $("c-p99").textContent = s.rtt.count ? ms(s.rtt.p99) + " ms" : "–";
      counter("c-elapsed", s.elapsed_s, clock(s.elapsed_s));
      const live = s.state === "running" || s.state === "waiting" || s.state === "draining";
      $("stop").hidden = !(s.state === "running" || s.state === "waiting");
      rows("t-thresholds", (s.thresholds || []).map((t) => `<tr><td>${esc(t.expr)}</td><td>${esc(t.observed)}</td><td class="${t.passed ? "pass" : "fail"}">${t.passed ? "pass" : "fail"}${live ? " (so far)" : ""}</td></tr>`).join(""));
      const errs = Object.entries(s.errors || {}).map(([k, n]) => `<tr><td>${esc(k)}</td><td>${fmt(n)}</td></tr>`);
      Object.entries(s.close_codes || {}).forEach(([c, n]) => errs.push(`<tr><td>close ${esc(c)}</td><td>${fmt(n)}</td></tr>`));
      rows("t-errors", errs.join(""));
      const lat = (name, l) => `<tr><td>${name}</td><td>${ms(l.p50)}</td><td>${ms(l.p90)}</td><td>${ms(l.p99)}</td><td>${ms(l.p999)}</td><td>${ms(l.max)}</td></tr>`;
      rows("t-latency", (s.rtt.count ? lat("RTT", s.rtt) : "") + (s.connect.count ? lat("connect", s.connect) : ""));
      rows("t-steps", (s.steps || []).map((t) => `<tr><td>${esc(t.name)}</td><td>${esc(t.kind)}</td><td>${fmt(t.ok)}</td><td>${fmt(t.failed)}</td><td>${fmt(t.messages)}</td><td>${ms(t.latency.p50)}</td><td>${ms(t.latency.p99)}</td></tr>`).join(""));
    }
    rows("t-agents", (s.agents || []).map((a) => `<tr><td>${esc(a.name)}</td><td>${fmt(a.sessions)}</td><td>${a.cpu_percent.toFixed(1)} %</td><td>${bytes(a.rss_bytes)}</td><td>${a.memory_percent.toFixed(1)} %</td><td class="${a.throttled ? "fail" : ""}">${a.throttled ? "yes" : "no"}</td><td>${a.clock_offset_ms.toFixed(2)} ms</td><td>${a.last_heartbeat_s.toFixed(1)} s ago</td></tr>`).join(""));
  }

  function drawRuns(runs) {
    rows("t-runs", (runs || []).map((r) => `<tr><td><a href="/runs/${encodeURIComponent(r.run_id)}">${esc(r.run_id)}</a></td><td>${esc(r.state)}</td><td>${esc(r.target)}</td><td>${fmt(r.sessions)}</td><td>${clock(r.elapsed_s)}</td><td>${r.report_dir ? `<a href="/runs/${encodeURIComponent(r.run_id)}/report.html">report.html</a>` : ""}</td></tr>`).join(""));
  }

  function connect() {
    const es = new EventSource("/api/events" + (wanted ? "?run=" + encodeURIComponent(wanted) : ""));
    es.addEventListener("open", () => { $("conn").textContent = "live"; });
    es.addEventListener("error", () => { $("conn").textContent = "reconnecting…"; });
    es.addEventListener("snapshot", (e) => {
      const s = JSON.parse(e.data);
      points = s.points || [];
      status = s.status || { agents: s.agents };
      if (!status.agents || status.agents.length === 0) status.agents = s.agents;
      drawRuns(s.runs);
      drawStatus();
      drawCharts();
    });
    es.addEventListener("point", (e) => {
      const p = JSON.parse(e.data);
      if (!points.length || points[points.length - 1].t < p.t) points.push(p);
      drawCharts();
    });
    es.addEventListener("status", (e) => {
      const s = JSON.parse(e.data);
      if (!s.run_id && status && status.run_id) status.agents = s.agents; else status = s;
      drawStatus();
    });
  }

  $("stop").addEventListener("click", () => {
    const b = $("stop");
    if (Date.now() - stopArmed > 5000) {
      stopArmed = Date.now();
      b.textContent = "Click again to stop";
      b.classList.add("armed");
      return;
    }
    b.disabled = true;
    b.textContent = "Stopping…";
    fetch("/api/runs/" + encodeURIComponent(runId) + "/stop", { method: "POST", headers: { "X-Wsload": "1" }, credentials: "same-origin" })
      .then((r) => { b.textContent = r.ok ? "Stop sent" : "Stop failed (" + r.status + ")"; });
  });
  setInterval(() => fetch("/api/runs", { credentials: "same-origin" }).then((r) => r.json()).then(drawRuns).catch(() => {}), 5000);
  window.addEventListener("resize", drawCharts);
  drawCharts();
  connect();
})();
