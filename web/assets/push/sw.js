// baton's service worker: shows a Web Push (the daemon encrypts each for this browser; the
// browser decrypts it before this runs) and opens the handoff's page on a click. Deciding is
// left to that page, where every check of a decision is shown.
"use strict";

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
  event.waitUntil(
    self.registration.showNotification(title, {
      body: data.body || "",
      tag: data.key ? "baton:" + data.workspace + ":" + data.key : undefined,
      renotify: true,
      requireInteraction: data.urgency === "high",
      icon: "/static/favicon.svg",
      data: { url: data.url || "/" },
    })
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || "/";
  event.waitUntil(
    (async () => {
      const open = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      for (const c of open) {
        if (c.url === url && "focus" in c) return c.focus();
      }
      return self.clients.openWindow(url);
    })()
  );
});
