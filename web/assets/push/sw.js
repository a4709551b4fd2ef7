// baton's service worker: shows a Web Push (the daemon encrypts each for this browser; the
// browser decrypts it before this runs) and opens the handoff's page on a click. A push may
// carry Approve and Reject actions, each with a one-time token for this reviewer, handoff,
// revision and outcome: clicking one posts the token with this browser's session to
// /api/v1/push/act, where the daemon decides with every rule of the page (or says why not),
// and the answer is shown as a follow-up notification. A tap elsewhere opens the page.
"use strict";

const ACT_URL = "/api/v1/push/act";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (_) {
    data = { title: "baton", body: event.data ? event.data.text() : "" };
  }
  const title = data.title || "baton";
  const actions = Array.isArray(data.actions) ? data.actions : [];
  const tokens = {};
  for (const a of actions) tokens[a.action] = a.token;
  event.waitUntil(
    self.registration.showNotification(title, {
      body: data.body || "",
      tag: data.key ? "baton:" + data.workspace + ":" + data.key : undefined,
      renotify: true,
      requireInteraction: data.urgency === "high",
      icon: "/static/favicon.svg",
      actions: actions.map((a) => ({ action: a.action, title: a.title })),
      data: { url: data.url || "/", key: data.key, workspace: data.workspace, tokens },
    })
  );
});

// Posts an action's token with this browser's session; answers what to tell the person.
async function act(token) {
  let answer;
  try {
    const res = await fetch(ACT_URL, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token }),
    });
    answer = await res.json().catch(() => ({ ok: false, error: "baton answered " + res.status }));
  } catch (_) {
    answer = { ok: false, error: "baton could not be reached; nothing was decided" };
  }
  return answer;
}

async function openPage(url) {
  const open = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  for (const c of open) {
    if (c.url === url && "focus" in c) return c.focus();
  }
  return self.clients.openWindow(url);
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const data = event.notification.data || {};
  const url = data.url || "/";
  const token = event.action && data.tokens ? data.tokens[event.action] : undefined;
  if (!token) {
    event.waitUntil(openPage(url));
    return;
  }
  event.waitUntil(
    (async () => {
      const answer = await act(token);
      const title = answer.ok ? answer.message || "Decided" : "Not decided";
      await self.registration.showNotification(title, {
        body: answer.ok ? "" : answer.error || "",
        tag: event.notification.tag,
        data: { url },
      });
    })()
  );
});
