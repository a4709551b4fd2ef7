// baton's one script. The pages work without it; it adds live updates over the event
// stream, the deadline countdowns, keyboard shortcuts and opt-in browser notifications.
(() => {
  "use strict";
  const page = document.body.dataset.page || "";
  const $ = (s, root = document) => root.querySelector(s);
  const $$ = (s, root = document) => Array.from(root.querySelectorAll(s));

  // ---- deadlines: "due in 27 m", red when near or past --------------------------------
  const NEAR_S = 30 * 60;
  const span = (s) => {
    s = Math.abs(Math.trunc(s));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " m";
    if (s < 86400) return Math.floor(s / 3600) + " h";
    return Math.floor(s / 86400) + " d";
  };
  const tick = () => {
    for (const el of $$("[data-deadline]")) {
      const left = (Date.parse(el.dataset.deadline) - Date.now()) / 1000;
      if (Number.isNaN(left)) continue;
      el.textContent = left < 0 ? "overdue " + span(left) : "due in " + span(left);
      el.classList.toggle("over", left < 0);
      el.classList.toggle("near", left >= 0 && left <= NEAR_S);
    }
  };
  tick();
  setInterval(tick, 15000);

  // ---- keyboard -----------------------------------------------------------------------
  const rows = () => $$("#queue tr.row");
  let cursor = -1;
  const select = (i) => {
    const list = rows();
    if (!list.length) return;
    cursor = Math.max(0, Math.min(i, list.length - 1));
    list.forEach((r, j) => r.classList.toggle("selected", j === cursor));
    list[cursor].scrollIntoView({ block: "nearest" });
  };
  const selectedRow = () => rows()[cursor];
  const LABEL = { approved: "Approve", changes_requested: "Request changes on", rejected: "Reject" };

  const decideInQueue = (outcome) => {
    const row = selectedRow();
    if (!row || !row.dataset.decide) return;
    const title = $(".title a", row).textContent;
    let comment = "";
    if (outcome !== "approved") {
      comment = prompt(LABEL[outcome] + " \u201c" + title + "\u201d \u2014 comment for the agent:");
      if (comment === null) return;
    } else if (!confirm("Approve \u201c" + title + "\u201d?")) {
      return;
    }
    const form = $("#bulk");
    $$("input[name=key]", form).forEach((c) => (c.checked = c.value === row.dataset.key));
    form.elements.comment.value = comment;
    const button = $(`button[name=outcome][value=${outcome}]`, form);
    form.dataset.confirmed = "1";
    form.requestSubmit(button);
  };

  const decideOnPage = (outcome) => {
    const form = $("#decide");
    if (!form) return;
    const button = $(`button[name=outcome][value=${outcome}]`, form);
    if (!button) return;
    form.elements.comment.focus();
    if (outcome !== "approved" && !form.elements.comment.value.trim()) {
      form.elements.comment.placeholder = "Say what to change, then press the key again";
      form.dataset.armed = outcome;
      return;
    }
    form.requestSubmit(button);
  };

  // Every decision button asks first; the confirmation names what will happen.
  document.addEventListener("submit", (e) => {
    const b = e.submitter;
    if (!b || b.name !== "outcome") return;
    if (e.target.dataset.confirmed) { delete e.target.dataset.confirmed; return; }
    const what = b.textContent.trim();
    if (!confirm(what + "?")) e.preventDefault();
  });

  const keys = $("#keys");
  $$(".keys-open").forEach((b) => b.addEventListener("click", () => keys.showModal()));
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t.closest("input, textarea, select, [contenteditable]")) return;
    const k = e.key;
    if (k === "?") { keys.open ? keys.close() : keys.showModal(); e.preventDefault(); return; }
    if (k === "/") {
      const box = document.querySelector(".search-form input[name=q]") || document.querySelector(".top-search input");
      if (box) { box.focus(); box.select(); e.preventDefault(); }
      return;
    }
    if (page === "queue") {
      if (k === "j") select(cursor + 1);
      else if (k === "k") select(cursor - 1);
      else if (k === "o" || k === "Enter") { const r = selectedRow(); if (r) location.href = r.dataset.href; }
      else if (k === "a") decideInQueue("approved");
      else if (k === "c") decideInQueue("changes_requested");
      else if (k === "r") decideInQueue("rejected");
      else if (k === "n") { const i = rows().findIndex((r) => r.dataset.decide); if (i >= 0) select(i); }
      else return;
    } else if (page === "handoff") {
      if (k === "a") decideOnPage("approved");
      else if (k === "c") decideOnPage("changes_requested");
      else if (k === "r") decideOnPage("rejected");
      else if (k === "n" || k === "j") { const n = $("[data-next]"); if (n) location.href = n.dataset.next; }
      else if (k === "k" || k === "u") location.href = "/";
      else return;
    } else {
      return;
    }
    e.preventDefault();
  });

  // ---- scroll boxes a keyboard can reach ----------------------------------------------------
  // A folded field, a capped list or a wide diff scrolls inside its box; whichever box has
  // more than it shows (at this width) is given a tab stop and a name, so a keyboard can
  // scroll it too. Boxes that fit get neither: no stop that does nothing.
  const GENERIC = new Set(["DIV", "PRE", "SPAN", "CODE", "SECTION"]);
  const nameOf = (el) => {
    const dt = el.tagName === "DD" && el.previousElementSibling;
    if (dt && dt.tagName === "DT") return dt.textContent.trim();
    const panel = el.closest("section, .panel, td, li");
    const h = panel && panel.querySelector("h2, h3, summary, strong");
    return (h ? h.textContent.trim() : "content") + " (scrolls)";
  };
  const focusableScrollers = () => {
    for (const el of $$(".fold, pre.diff, pre.code")) {
      const over = el.scrollHeight > el.clientHeight + 1 || el.scrollWidth > el.clientWidth + 1;
      if (over && !el.hasAttribute("tabindex")) {
        el.tabIndex = 0;
        el.dataset.scroller = "1";
        if (GENERIC.has(el.tagName)) el.setAttribute("role", "group");
        el.setAttribute("aria-label", nameOf(el));
      } else if (!over && el.dataset.scroller) {
        el.removeAttribute("tabindex");
        el.removeAttribute("aria-label");
        if (GENERIC.has(el.tagName)) el.removeAttribute("role");
        delete el.dataset.scroller;
      }
    }
  };
  focusableScrollers();
  let resizing = null;
  window.addEventListener("resize", () => { clearTimeout(resizing); resizing = setTimeout(focusableScrollers, 150); });

  // ---- changed artifacts' diffs, inline ------------------------------------------------------
  // The handoff page links each changed artifact's diff; here the diff itself is fetched
  // (the same page the link opens) and its coloured hunks put in place, so a reviewer on a
  // phone reads the change without another page. The page itself never waits on the file.
  for (const box of $$("[data-diff]")) {
    fetch(box.dataset.diff, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.text() : Promise.reject(new Error(String(r.status)))))
      .then((html) => {
        const doc = new DOMParser().parseFromString(html, "text/html");
        const parts = Array.from(doc.querySelectorAll(".preview > p.small, .preview > pre.diff"));
        if (!parts.length) return;
        box.replaceChildren(...parts.map((n) => document.importNode(n, true)));
        focusableScrollers();
      })
      .catch(() => {});
  }

  // ---- live arrivals, said aloud ------------------------------------------------------------
  const news = $("#live-news");
  const announce = (rows) => {
    if (!news || !rows.length) return;
    const titles = rows.slice(0, 3).map((r) => $(".title a", r).textContent.trim());
    const more = rows.length > 3 ? " and " + (rows.length - 3) + " more" : "";
    news.textContent = (rows.length === 1 ? "New handoff: " : rows.length + " new handoffs: ") + titles.join("; ") + more;
  };

  // ---- live updates ---------------------------------------------------------------------
  // On any handoff event, fetch this same page again and swap in its live part; the cursor
  // stays on the same handoff. Bursts are folded into one fetch.
  const live = $("[data-live]");
  const known = new Set(rows().filter((r) => r.dataset.decide).map((r) => r.dataset.key));
  let pendingFetch = null;
  const refresh = () => {
    if (pendingFetch) return;
    pendingFetch = setTimeout(async () => {
      pendingFetch = null;
      const keep = selectedRow() && selectedRow().dataset.key;
      const res = await fetch(location.href, { credentials: "same-origin" });
      if (!res.ok) return;
      const doc = new DOMParser().parseFromString(await res.text(), "text/html");
      const fresh = doc.querySelector("[data-live]");
      if (!fresh || !live) return;
      // A line stays checked only while it shows the revision it was checked at: the form
      // posts the revision shown, and one revised since must be looked at again.
      const line = (c) => c.value + " " + c.dataset.seen;
      const checked = new Set($$("input[name=key]:checked").map(line));
      live.replaceChildren(...fresh.childNodes);
      $$("input[name=key]").forEach((c) => (c.checked = checked.has(line(c))));
      doc.querySelectorAll(".tabs .count").forEach((c, i) => { const mine = $$(".tabs .count")[i]; if (mine) mine.textContent = c.textContent; });
      const list = rows();
      if (keep) { const i = list.findIndex((r) => r.dataset.key === keep); if (i >= 0) select(i); }
      const arrived = list.filter((r) => r.dataset.decide && !known.has(r.dataset.key));
      for (const r of arrived) {
        known.add(r.dataset.key);
        notify(r);
      }
      announce(arrived);
      tick();
      focusableScrollers();
    }, 250);
  };
  let es = null;
  const connect = () => {
    es = new EventSource("/api/v1/events");
    for (const type of ["handoff.received", "handoff.revised", "handoff.decided", "handoff.claimed", "handoff.signed_off", "handoff.invalid", "handoff.escalated"]) {
      es.addEventListener(type, refresh);
    }
    es.addEventListener("lagged", refresh);
  };
  if (live && window.EventSource) {
    connect();
    // A page kept in the back/forward cache keeps its stream open, and a browser opens at
    // most six connections per host: five queue views later, the next page would wait.
    // Close the stream on leaving; on coming back, open it again and catch up.
    window.addEventListener("pagehide", () => { if (es) { es.close(); es = null; } });
    window.addEventListener("pageshow", (e) => { if (e.persisted && !es) { connect(); refresh(); } });
  }

  // ---- notifications (opt-in) -----------------------------------------------------------
  const toggle = $("#notify-toggle");
  const notify = (row) => {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    if (!document.hidden) return;
    const title = $(".title a", row).textContent;
    const n = new Notification("baton: a handoff for you", { body: title, tag: row.dataset.key });
    n.onclick = () => { window.focus(); location.href = row.dataset.href; };
  };
  if (toggle && "Notification" in window && Notification.permission === "default" && page === "queue") {
    toggle.hidden = false;
    toggle.addEventListener("click", async () => {
      await Notification.requestPermission();
      toggle.hidden = true;
    });
  }
})();
