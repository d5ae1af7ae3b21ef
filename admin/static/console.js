// Kefu console: live updates over server-sent events, progressive on top of plain forms.
// Customer text is only ever put into the page with textContent, never as markup.
"use strict";

(function () {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

  function fmtWait(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    return (h ? h + ":" + String(m).padStart(2, "0") : m) + ":" + String(s).padStart(2, "0");
  }

  function tickWaits() {
    const now = Date.now() / 1000;
    document.querySelectorAll("[data-since]").forEach((el) => {
      el.textContent = fmtWait(now - parseFloat(el.dataset.since));
    });
  }

  function liveStatus(on) {
    const el = document.getElementById("live-status");
    if (!el) return;
    el.hidden = false;
    el.classList.toggle("off", !on);
    el.textContent = on ? (document.body.dataset.lang === "zh" ? "实时" : "Live") : (document.body.dataset.lang === "zh" ? "重连中…" : "Reconnecting…");
  }

  // Events published while a page was disconnected are not replayed: after a reconnect
  // the page catches up from the server (onResume).
  // `since`: when the server rendered this page; the stream tells the page to catch up
  // if something happened between that and the stream's opening. Asked at most once in
  // 10 s per tab, so that a busy queue cannot keep a page reloading.
  function caughtUpAt() {
    try { return parseFloat(sessionStorage.getItem("kefu-caught-up") || "0"); } catch (e) { return 0; }
  }
  function connect(url, handlers, onResume) {
    const rendered = document.body.dataset.rendered;
    if (rendered && Date.now() - caughtUpAt() > 10000) {
      url += (url.includes("?") ? "&" : "?") + "since=" + encodeURIComponent(rendered);
    }
    const source = new EventSource(url);
    let lost = false;
    source.onopen = () => {
      liveStatus(true);
      if (lost && onResume) onResume();
      lost = false;
    };
    source.onerror = () => { lost = true; liveStatus(false); };
    // The server lost its own subscription for a while: catch up the same way.
    if (onResume) {
      source.addEventListener("resync", () => {
        try { sessionStorage.setItem("kefu-caught-up", String(Date.now())); } catch (e) { /* private mode */ }
        onResume();
      });
    }
    for (const [name, fn] of Object.entries(handlers)) {
      source.addEventListener(name, (e) => fn(JSON.parse(e.data)));
    }
    return source;
  }

  function notify(text, body) {
    if ("Notification" in window && Notification.permission === "granted") {
      new Notification(text, { body: body, tag: "kefu-waiting" });
    }
    try {
      const ctx = new (window.AudioContext || window.webkitAudioContext)();
      const osc = ctx.createOscillator();
      osc.frequency.value = 880;
      osc.connect(ctx.destination);
      osc.start();
      osc.stop(ctx.currentTime + 0.15);
    } catch (e) { /* no sound available: the row still appears */ }
  }

  function setupInbox(root) {
    const tbody = document.querySelector("#waiting tbody");
    const template = document.getElementById("waiting-row");
    const count = document.getElementById("waiting-count");
    const empty = document.getElementById("nothing-waiting");
    const button = document.getElementById("enable-notifications");
    if (button && "Notification" in window && Notification.permission === "default") {
      button.hidden = false;
      button.addEventListener("click", () => Notification.requestPermission().then(() => { button.hidden = true; }));
    }
    const refresh = () => {
      const n = tbody.querySelectorAll("tr").length;
      count.textContent = String(n);
      empty.hidden = n > 0;
      document.title = (n ? "(" + n + ") " : "") + document.title.replace(/^\(\d+\) /, "");
    };
    const rowOf = (cid) => Array.from(tbody.querySelectorAll("tr")).find((tr) => tr.dataset.conversation === cid);
    const onEvent = (ev) => {
      const row = rowOf(ev.conversation);
      if (ev.owner !== "queue" || !ev.waiting) {
        if (row) row.remove();
        refresh();
        return;
      }
      if (row) return;
      const w = ev.waiting;
      const tr = template.content.firstElementChild.cloneNode(true);
      tr.dataset.conversation = w.conversation;
      tr.classList.add("fresh");
      tr.querySelector(".wait").dataset.since = String(w.waiting_since);
      const reason = (w.reason_words && w.reason_words[document.documentElement.lang === "zh-CN" ? "zh" : "en"]) || w.reason;
      tr.querySelector(".reason").textContent = reason;
      tr.querySelector(".channel").textContent = w.channel;
      tr.querySelector(".customer").textContent = w.customer;
      tr.querySelector(".language").textContent = w.language;
      const href = "/admin/conversations/" + encodeURIComponent(w.conversation);
      tr.querySelector("a.open").href = href;
      tr.querySelector("form.claim").action = href + "/claim";
      const rows = Array.from(tbody.querySelectorAll("tr"));
      const after = rows.find((r) => parseFloat(r.querySelector(".wait").dataset.since) > w.waiting_since);
      tbody.insertBefore(tr, after || null);  // oldest first
      tickWaits();
      refresh();
      notify(root.dataset.newText, w.customer + " · " + reason);
    };
    connect("/admin/events", { message: onEvent, queued: onEvent, claimed: onEvent, transferred: onEvent, handed_back: onEvent, closed: onEvent },
      () => location.reload());
  }

  function messageItem(root, m) {
    const li = document.createElement("li");
    li.className = "msg " + m.direction;
    li.dataset.id = m.id;
    const meta = document.createElement("div");
    meta.className = "meta";
    const who = m.author === "agent" ? root.dataset.agentText : m.author === "bot" ? root.dataset.botText : root.dataset.customer || "";
    meta.textContent = m.time + " · " + who;
    li.appendChild(meta);
    if (m.kind === "voice") {
      const box = document.createElement("div");
      box.className = "voice";
      if (m.has_media) {
        const audio = document.createElement("audio");
        audio.controls = true;
        audio.preload = "none";
        audio.src = "/admin/messages/" + encodeURIComponent(m.id) + "/media";
        box.appendChild(audio);
      }
      if (m.transcript) {
        const p = document.createElement("p");
        p.className = "transcript";
        p.textContent = root.dataset.transcriptText + ": " + m.transcript +
          (m.confidence === null || m.confidence === undefined ? "" : "  " + root.dataset.confidenceText + " " + m.confidence.toFixed(2));
        box.appendChild(p);
      }
      li.appendChild(box);
    } else if (m.kind === "image" && m.has_media) {
      const img = document.createElement("img");
      img.className = "picture";
      img.loading = "lazy";
      img.src = "/admin/messages/" + encodeURIComponent(m.id) + "/media";
      li.appendChild(img);
    } else {
      const p = document.createElement("p");
      p.className = m.kind === "event" ? "event" : "text";
      p.textContent = m.kind === "event" ? "[" + m.event + "]" : m.text;
      li.appendChild(p);
    }
    return li;
  }

  function setupConversation(root) {
    const list = document.getElementById("messages");
    const owner = document.getElementById("owner");
    root.dataset.customer = document.querySelector(".chat h1")?.textContent || "";
    list.scrollTop = list.scrollHeight;
    let pending = null;
    const onEvent = (ev) => {
      let botSpoke = false;
      for (const m of ev.messages || []) {
        if (list.querySelector('[data-id="' + CSS.escape(m.id) + '"]')) continue;
        list.appendChild(messageItem(root, m));
        list.scrollTop = list.scrollHeight;
        botSpoke = botSpoke || m.author === "bot";
      }
      // A bot's answer may come with a skill's action (a ticket opened, a quote): the
      // server renders those, so the list is read again once the answers have settled.
      if (botSpoke) {
        clearTimeout(pending);
        pending = setTimeout(catchUp, 300);
      }
      const mine = ev.owner === "agent:" + root.dataset.me;
      if (ev.owner.startsWith("agent:") && !mine && owner) {
        owner.textContent = root.dataset.claimedText.replace("{agent}", ev.owner.slice(6));
        document.querySelectorAll("#claim, #reply-form button").forEach((b) => { b.disabled = true; });
      }
    };
    const catchUp = () => fetch(location.href, { credentials: "same-origin" })
      .then((r) => r.text())
      .then((html) => {
        // The server's own rendering (escaped there) of the messages; the reply being
        // typed stays as it is.
        const fresh = new DOMParser().parseFromString(html, "text/html").getElementById("messages");
        if (fresh) { list.replaceChildren(...fresh.children); list.scrollTop = list.scrollHeight; }
      });
    connect("/admin/events?conversation=" + encodeURIComponent(root.dataset.conversation),
      { message: onEvent, claimed: onEvent, transferred: onEvent, handed_back: onEvent, closed: onEvent, queued: onEvent }, catchUp);
    const canned = document.getElementById("canned");
    if (canned) {
      canned.addEventListener("change", () => {
        const area = document.querySelector("#reply-form textarea");
        if (canned.value && area) area.value = area.value ? area.value + "\n" + canned.value : canned.value;
        canned.value = "";
        area?.focus();
      });
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    tickWaits();
    setInterval(tickWaits, 1000);
    const root = document.querySelector("[data-live]");
    if (!root) return;
    if (root.dataset.live === "inbox") setupInbox(root);
    if (root.dataset.live === "conversation") setupConversation(root);
  });
  window.kefuCsrf = csrf;
  window.kefuLive = connect;  // other live pages (the marketers' dashboards) use the same stream handling
})();
