// Passkeys (WebAuthn) on baton's pages. On /reviewers/passkeys: register one, between the
// daemon's two calls around navigator.credentials.create (a first one with the password typed
// again; another, or a removal, after confirming with a passkey the reviewer has, so a stolen
// session cannot change them). On a handoff whose route asks for a
// passkey (form#decide[data-passkey]): Approve first asks the daemon for a challenge bound to
// this revision, has the authenticator sign it (navigator.credentials.get), and posts the
// answer with the form; the daemon checks it and spends it. Binary fields travel base64url.
"use strict";
(() => {
  const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const bytes = (s) => {
    const t = s.replace(/-/g, "+").replace(/_/g, "/");
    return Uint8Array.from(atob(t + "===".slice((t.length + 3) % 4)), (c) => c.charCodeAt(0));
  };
  const csrf = () => (document.querySelector("[data-csrf]") || {}).dataset?.csrf
    || (document.querySelector("input[name=csrf]") || {}).value || "";
  const post = async (url, body) => {
    const r = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body),
    });
    const answer = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(answer.error || answer.message || answer.detail || `HTTP ${r.status}`);
    return answer;
  };
  const ext = (c) => (c.getClientExtensionResults ? c.getClientExtensionResults() : {});

  // The answer to a challenge `{ceremony, options}` from navigator.credentials.get:
  // {ceremony, credential}.
  const answer = async ({ ceremony, options }) => {
    const pk = options.publicKey;
    pk.challenge = bytes(pk.challenge);
    (pk.allowCredentials || []).forEach((c) => { c.id = bytes(c.id); });
    const c = await navigator.credentials.get({ publicKey: pk });
    const r = c.response;
    const credential = {
      id: c.id, rawId: b64(c.rawId), type: c.type, extensions: ext(c),
      response: {
        authenticatorData: b64(r.authenticatorData), clientDataJSON: b64(r.clientDataJSON),
        signature: b64(r.signature), userHandle: r.userHandle ? b64(r.userHandle) : null,
      },
    };
    return { ceremony, credential: JSON.stringify(credential) };
  };
  // The reviewer's approval of revision `revision` of `key`, confirmed.
  const confirm = async (key, revision) =>
    answer(await post(`/handoffs/${encodeURIComponent(key)}/passkey`, { revision }));
  // A confirmation that the reviewer may change their passkeys: purpose "register" or
  // "remove" (with the passkey's id).
  const manage = async (purpose, id) =>
    answer(await post("/reviewers/passkeys/confirm", id ? { purpose, id } : { purpose }));
  window.batonPasskey = { confirm, manage };

  const register = async (label, password) => {
    let shown = { password };
    if (document.querySelector("table.passkeys")) {
      const a = await manage("register");
      shown = { ceremony: a.ceremony, credential: JSON.parse(a.credential) };
    }
    const { ceremony, options } = await post("/reviewers/passkeys/options", shown);
    const pk = options.publicKey;
    pk.challenge = bytes(pk.challenge);
    pk.user.id = bytes(pk.user.id);
    (pk.excludeCredentials || []).forEach((c) => { c.id = bytes(c.id); });
    const c = await navigator.credentials.create({ publicKey: pk });
    const r = c.response;
    const credential = {
      id: c.id, rawId: b64(c.rawId), type: c.type, extensions: ext(c),
      response: { attestationObject: b64(r.attestationObject), clientDataJSON: b64(r.clientDataJSON) },
    };
    return post("/reviewers/passkeys/new", { ceremony, credential, label });
  };

  const status = document.querySelector("[data-passkey-status]");
  const say = (text) => { if (status) status.textContent = text; };

  const add = document.querySelector("[data-passkey-register]");
  if (add) {
    if (!window.PublicKeyCredential) {
      say("This browser cannot use passkeys.");
      add.disabled = true;
    }
    add.addEventListener("click", async () => {
      add.disabled = true;
      say("Follow your browser's prompt to create the passkey…");
      try {
        const label = (document.querySelector("[data-passkey-label]") || {}).value || "";
        const password = (document.querySelector("[data-passkey-password]") || {}).value || "";
        await register(label, password);
        location.reload();
      } catch (e) {
        say(`Not registered: ${e.message}`);
        add.disabled = false;
      }
    });
  }

  // Removing a passkey: confirmed with a passkey first, then the form posted with the answer.
  document.addEventListener("submit", async (e) => {
    const form = e.target;
    if (e.defaultPrevented || !form.matches("form[data-passkey-remove]") || form.dataset.confirmed) return;
    e.preventDefault();
    say("Confirm the removal with one of your passkeys…");
    try {
      const a = await manage("remove", form.querySelector("input[name=id]").value);
      form.querySelector("input[name=passkey_ceremony]").value = a.ceremony;
      form.querySelector("input[name=passkey_credential]").value = a.credential;
      form.dataset.confirmed = "1";
      form.submit();
    } catch (err) {
      say(`Not removed: ${err.message}`);
    }
  });

  // After app.js's confirmation: an approval on a passkey route is posted with its assertion.
  document.addEventListener("submit", async (e) => {
    const form = e.target;
    const b = e.submitter;
    if (e.defaultPrevented || form.id !== "decide" || !form.dataset.passkey) return;
    if (!b || b.name !== "outcome" || b.value !== "approved") return;
    e.preventDefault();
    say("Confirm the approval with your passkey…");
    try {
      const { ceremony, credential } = await confirm(form.dataset.key, Number(form.dataset.revision));
      const put = (name, value) => {
        const i = document.createElement("input");
        i.type = "hidden"; i.name = name; i.value = value;
        form.appendChild(i);
      };
      put("passkey_ceremony", ceremony);
      put("passkey_credential", credential);
      put("outcome", "approved");
      form.submit();
    } catch (err) {
      say(`Not approved: ${err.message}`);
    }
  });
})();
