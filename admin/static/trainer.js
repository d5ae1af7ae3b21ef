// Kefu console, the trainer's pages live: new missed questions, label changes and corrected
// transcripts from any web process (GET /admin/trainer/events). The missed-question page
// offers a reload (the grouping is the server's, and a form may be half filled in); the
// label page updates the rows it shows in place. Text goes in with textContent only.
"use strict";

(function () {
  function fill(words, n) { return words.replace("{n}", String(n)); }

  function stamp(at) {
    const d = new Date(at * 1000), p = (x) => String(x).padStart(2, "0");
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " + p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
  }

  // A page that lists what a count counts (unlabelled turns, new transcripts): when the
  // count moves away from the one the page was drawn with, it offers a reload.
  function setupCount(news, field) {
    const shown = parseInt(news.dataset.shown, 10);
    return (ev) => {
      if (ev[field] === shown) return;
      news.querySelector("span").textContent = fill(news.dataset.words, ev[field]);
      news.hidden = false;
    };
  }

  function setupLabels(news) {
    const table = document.getElementById("label-list");
    const words = JSON.parse(table.dataset.words);
    const current = table.dataset.current;
    const tell = (ev) => {
      news.querySelector("span").textContent = fill(news.dataset.words, ev.proposed);
      news.hidden = false;
    };
    return (ev) => {
      if (ev.reload_labels) tell(ev);
      for (const label of ev.labels) {
        const row = table.querySelector('tr[data-label="' + CSS.escape(label.id) + '"]');
        if (!row) {
          if (!current || current === label.status) tell(ev);  // a label this list would show
          continue;
        }
        if (row.dataset.status === label.status) continue;
        row.dataset.status = label.status;
        row.querySelector("td.status").textContent = words["status_" + label.status] || label.status;
        if (label.status !== "proposed") row.querySelectorAll("form.approve, .own").forEach((el) => el.remove());
        if (label.status === "reverted") row.querySelectorAll("form.revert").forEach((el) => el.remove());
        const trail = row.querySelector("ol.trail");
        trail.replaceChildren(...label.trail.map((e) => {
          const li = document.createElement("li");
          li.dataset.action = e.action;
          const when = document.createElement("span");
          when.className = "muted";
          when.textContent = stamp(e.at);
          const who = document.createElement("strong");
          who.textContent = e.by;
          const what = document.createElement("span");
          what.className = "mono";
          what.textContent = e.before + " → " + e.after;
          li.append(when, " ", who, " " + (words["action_" + e.action] || e.action) + ": ", what);
          return li;
        }));
      }
    };
  }

  document.addEventListener("DOMContentLoaded", () => {
    const news = document.getElementById("trainer-news");
    if (!news || !window.kefuLive) return;
    const labels = news.dataset.page === "labels";
    const apply = labels ? setupLabels(news) : setupCount(news, news.dataset.page === "transcripts" ? "transcripts" : "unlabelled");
    // After a reconnect the stream starts with the counts, so the counting pages
    // catch up from them (no reload: a form may be half filled in); the label page
    // cannot know which rows changed meanwhile and reads them again.
    window.kefuLive(news.dataset.events, { trainer: apply }, labels ? () => window.location.reload() : () => {});
  });
})();
