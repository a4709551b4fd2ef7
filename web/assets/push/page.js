// The reviewers page's push control: subscribes this browser (service worker + PushManager,
// with the daemon's VAPID key) and sends the subscription to /api/v1/me/push, or forgets it.
"use strict";

(function () {
  const box = document.getElementById("push");
  if (!box) return;
  const state = box.querySelector("[data-push-state]");
  const on = box.querySelector("[data-push-on]");
  const off = box.querySelector("[data-push-off]");
  const csrf = box.dataset.csrf;
  const say = (text) => { state.textContent = text; };
  const show = (subscribed) => { on.hidden = subscribed; off.hidden = !subscribed; };

  if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
    say("This browser cannot receive pushes.");
    on.hidden = off.hidden = true;
    return;
  }

  const b64 = (s) => {
    const pad = "=".repeat((4 - (s.length % 4)) % 4);
    const raw = atob((s + pad).replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  };
  const api = (method, path, body) =>
    fetch(path, {
      method,
      credentials: "same-origin",
      headers: body ? { "content-type": "application/json", "x-csrf-token": csrf } : {},
      body: body ? JSON.stringify(body) : undefined,
    });

  async function current() {
    const reg = await navigator.serviceWorker.getRegistration("/");
    return reg ? reg.pushManager.getSubscription() : null;
  }

  async function subscribe() {
    const answer = await api("GET", "/api/v1/push/key");
    const told = await answer.json();
    if (!answer.ok || !told.enabled) { say(told.why || told.error || "Pushes are off here."); return; }
    const public_key = told.public_key;
    if ((await Notification.requestPermission()) !== "granted") {
      say("Notifications are blocked for this site; allow them in the browser's settings.");
      return;
    }
    const reg = await navigator.serviceWorker.register("/static/push/sw.js", { scope: "/" });
    await navigator.serviceWorker.ready;
    const sub = await reg.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: b64(public_key),
    });
    // The endpoint and keys only: the API refuses nulls (expirationTime is one).
    const { endpoint, keys } = sub.toJSON();
    const saved = await api("POST", "/api/v1/me/push", { endpoint, keys });
    if (!saved.ok) { say((await saved.json()).error || "Not saved."); return; }
    say("This browser gets pushes about handoffs you may decide.");
    show(true);
  }

  async function unsubscribe() {
    const sub = await current();
    if (sub) {
      await api("DELETE", "/api/v1/me/push", { endpoint: sub.endpoint });
      await sub.unsubscribe();
    }
    say("This browser gets no pushes.");
    show(false);
  }

  on.addEventListener("click", () => subscribe().catch((e) => say("Cannot subscribe: " + e.message)));
  off.addEventListener("click", () => unsubscribe().catch((e) => say("Cannot unsubscribe: " + e.message)));
  current().then((sub) => {
    show(!!sub);
    say(sub ? "This browser gets pushes about handoffs you may decide." : "This browser gets no pushes.");
  });
})();
