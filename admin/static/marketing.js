// Marketers' workspace: charts from JSON in the page, live template previews, rule
// validation as you type, the layer editor's preview count. Every page works without it.
// Text from the server is only ever put into the page with textContent, but for the
// live boards: they swap in a part the server rendered with the same autoescaped
// template as the page itself, parsed inertly (DOMParser runs no script; the CSP
// allows no inline script either).
"use strict";

(function () {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
  const zh = document.body.dataset.lang === "zh";
  const COLORS = { sent: "#2e7d32", digest: "#0b6bcb", held: "#8e6ccf", suppressed: "#9aa5b1", fell_back: "#f0a030", failed: "#b42318" };

  function dataOf(id) {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function activityChart() {
    const data = dataOf("activity-data");
    const canvas = document.getElementById("activity-chart");
    if (!data || !canvas || !window.Chart) return;
    const names = {};
    document.querySelectorAll("#outcome-names li").forEach((li) => { names[li.dataset.outcome] = li.textContent; });
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: data.series.map(([o, values]) => ({ label: names[o] || o, data: values, backgroundColor: COLORS[o] })),
      },
      options: { animation: false, responsive: true, maintainAspectRatio: false, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
    });
  }

  function carrierChart() {
    const data = dataOf("carrier-data");
    const canvas = document.getElementById("carrier-chart");
    if (!data || !canvas || !window.Chart) return;
    const palette = ["#0b6bcb", "#b42318", "#2e7d32", "#f0a030", "#8e6ccf", "#00838f"];
    new window.Chart(canvas, {
      type: "line",
      data: {
        labels: data.labels,
        datasets: data.series.map(([carrier, values], i) => ({ label: carrier, data: values, borderColor: palette[i % palette.length], spanGaps: true })),
      },
      options: { animation: false, responsive: true, maintainAspectRatio: false, scales: { y: { beginAtZero: true, suggestedMax: 100, ticks: { callback: (v) => v + "%" } } } },
    });
  }

  // The activity page follows the engine's counts: the server sends the page's whole
  // view (totals, periods, topics, channels, reasons) when they change.
  function liveActivity() {
    const root = document.querySelector('[data-live="activity"]');
    const data = dataOf("activity-data");
    if (!root || !data || !window.kefuLive) return;
    const outcomes = Array.from(document.querySelectorAll("#outcome-names li")).map((li) => li.dataset.outcome);
    const slot = new Map(data.at.map((at, i) => [at, i]));
    const cells = (tr, row) => {
      tr.querySelectorAll("td").forEach((td, k) => {
        const target = td.querySelector("a") || td;
        target.textContent = String(row[outcomes[k]] || 0);
      });
    };
    const apply = (ev) => {
      for (const [o, n] of Object.entries(ev.totals)) {
        const el = root.querySelector('#activity-totals [data-outcome="' + o + '"] strong');
        if (el) el.textContent = String(n);
      }
      const chart = window.Chart && window.Chart.getChart(document.getElementById("activity-chart"));
      if (chart) {
        chart.data.datasets.forEach((ds) => { ds.data = data.at.map(() => 0); });
        for (const period of ev.series) {
          const i = slot.get(period.at);
          if (i === undefined) continue;  // a period this page does not draw
          chart.data.datasets.forEach((ds, k) => { ds.data[i] = period[data.series[k][0]] || 0; });
        }
        chart.update("none");
      }
      // Every topic and configured channel has its row; a channel outside them shows on reload.
      document.querySelectorAll("#activity-topics tr[data-topic]").forEach((tr) => cells(tr, ev.topics[tr.dataset.topic] || {}));
      document.querySelectorAll("#activity-channels tr[data-channel]").forEach((tr) => cells(tr, ev.channels[tr.dataset.channel] || {}));
      const reasons = document.getElementById("activity-reasons");
      if (reasons && ev.reasons.length) {
        reasons.replaceChildren(...ev.reasons.map(([reason, n]) => {
          const li = document.createElement("li");
          const span = document.createElement("span");
          span.className = "mono";
          span.textContent = reason;
          li.append(span, " · " + n);
          return li;
        }));
      }
      root.dataset.updated = String(ev.sent_at);
    };
    // After a lost connection the page reads everything again.
    window.kefuLive(root.dataset.events, { activity: apply }, () => window.location.reload());
  }

  // Repair operations, data requests, carriers and the digest schedule: the server sends
  // the board again, rendered, whenever its data changes (from any process). A chart in
  // the board is drawn again from the JSON that came with it.
  function liveBoard() {
    const root = document.querySelector('[data-live="board"]');
    if (!root || !window.kefuLive) return;
    const apply = (ev) => {
      const parsed = new DOMParser().parseFromString(ev.html, "text/html");
      root.querySelectorAll("canvas").forEach((canvas) => { window.Chart?.getChart(canvas)?.destroy(); });
      root.replaceChildren(...Array.from(parsed.body.childNodes));
      carrierChart();
      root.dataset.updated = String(ev.sent_at);
    };
    window.kefuLive(root.dataset.events, { board: apply }, () => window.location.reload());
  }

  // Ask the server after the user stops typing; only the newest answer counts.
  function debounced(fn, ms) {
    let timer = null;
    return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
  }

  async function postForm(url, form) {
    const body = new URLSearchParams(new FormData(form));
    body.delete("action");
    const resp = await fetch(url, { method: "POST", body, headers: { "X-CSRF-Token": csrf(), Accept: "application/json" }, credentials: "same-origin" });
    return resp.json();
  }

  function templateEditor() {
    const form = document.getElementById("template-form");
    if (!form) return;
    const error = document.getElementById("template-error");
    let seq = 0;
    const refresh = debounced(async () => {
      const mine = ++seq;
      const answer = await postForm(form.dataset.preview, form);
      if (mine !== seq) return;
      if (answer.error) {
        error.hidden = false;
        error.textContent = answer.error;
        error.dataset.line = answer.line || "";
        return;
      }
      error.hidden = true;
      for (const [detail, text] of Object.entries(answer.previews || {})) {
        const pre = document.querySelector('.preview-text[data-detail="' + detail + '"]');
        if (pre) pre.textContent = text;
      }
    }, 250);
    document.getElementById("template-source").addEventListener("input", refresh);
  }

  function ruleEditor() {
    const form = document.getElementById("rule-form");
    if (!form) return;
    const error = document.getElementById("rule-error");
    let seq = 0;
    const check = debounced(async () => {
      const mine = ++seq;
      const answer = await postForm(form.dataset.validate, form);
      if (mine !== seq) return;
      error.hidden = answer.ok;
      error.textContent = answer.ok ? "" : (answer.field ? answer.field + ": " : "") + answer.error;
    }, 300);
    form.addEventListener("input", check);
  }

  function layerEditor() {
    const form = document.getElementById("layer-form");
    if (!form) return;
    const box = document.getElementById("layer-preview");
    let seq = 0;
    const refresh = debounced(async () => {
      const mine = ++seq;
      const answer = await postForm(form.dataset.preview, form);
      if (mine !== seq || answer.error) return;
      box.hidden = false;
      box.replaceChildren();
      const p = document.createElement("p");
      const strong = document.createElement("strong");
      strong.id = "affected-count";
      strong.textContent = String(answer.affected);
      p.append(strong, " " + (zh ? "位客户将受此变更影响" : "customers affected"));
      box.append(p);
    }, 300);
    form.addEventListener("change", refresh);
  }

  document.addEventListener("DOMContentLoaded", () => {
    activityChart();
    liveActivity();
    liveBoard();
    carrierChart();
    templateEditor();
    ruleEditor();
    layerEditor();
  });
})();
