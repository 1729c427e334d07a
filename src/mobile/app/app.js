// The Gatehouse phone app. It uses only the public mobile API (/api/mobile/v1): the
// device key is a non-extractable ECDSA P-256 key kept in IndexedDB, and every
// state-changing request carries a compact ES256 JWS made with it.

const API = "/api/mobile/v1";
const app = document.getElementById("app");

// ---------- storage ----------
function idb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open("gatehouse", 1);
    req.onupgradeneeded = () => req.result.createObjectStore("kv");
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}
async function kvGet(key) {
  const db = await idb();
  return new Promise((resolve, reject) => {
    const req = db.transaction("kv").objectStore("kv").get(key);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}
async function kvSet(key, value) {
  const db = await idb();
  return new Promise((resolve, reject) => {
    const tx = db.transaction("kv", "readwrite");
    tx.objectStore("kv").put(value, key);
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
  });
}

// ---------- JWS ----------
const enc = new TextEncoder();
function b64url(bytes) {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
async function sign(privateKey, payload) {
  const header = b64url(enc.encode(JSON.stringify({ alg: "ES256", typ: "JWT" })));
  const body = b64url(enc.encode(JSON.stringify({ ...payload, iat: Math.floor(Date.now() / 1000) })));
  const input = `${header}.${body}`;
  // WebCrypto returns the raw r||s signature, which is exactly JWS's ES256 format.
  const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, privateKey, enc.encode(input));
  return `${input}.${b64url(sig)}`;
}

// ---------- API ----------
class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}
async function call(method, path, body) {
  let res;
  try {
    res = await fetch(API + path, {
      method,
      headers: body ? { "content-type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (e) {
    throw new ApiError(0, "network", "Gatehouse cannot be reached. Check the connection and try again.");
  }
  const text = await res.text();
  const data = text ? JSON.parse(text) : {};
  if (!res.ok) {
    const err = data.error || {};
    throw new ApiError(res.status, err.code || "unknown", err.message || `The server answered ${res.status}.`);
  }
  return data;
}

async function device() {
  return { keys: await kvGet("keys"), id: await kvGet("device_id"), emails: (await kvGet("emails")) || [] };
}

async function enroll() {
  const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
  const jwk = await crypto.subtle.exportKey("jwk", keys.publicKey);
  const public_key = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
  const jws = await sign(keys.privateKey, { purpose: "register" });
  const { device_id } = await call("POST", "/devices", { public_key, jws });
  await kvSet("keys", keys);
  await kvSet("device_id", device_id);
  await kvSet("emails", []);
}

// This phone's key is gone for the server (forgotten, or revoked by an admin): drop it here
// too, so that the next step makes a new one.
async function dropKey() {
  // The id goes first: a phone without an id offers to enroll, which writes new keys.
  await kvSet("device_id", undefined);
  await kvSet("keys", undefined);
  await kvSet("emails", []);
}

async function forget() {
  const d = await device();
  const jws = await sign(d.keys.privateKey, { purpose: "forget", device_id: d.id });
  await call("DELETE", `/devices/${d.id}`, { jws });
  await dropKey();
}

// ---------- rendering ----------
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v !== false && v != null) el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c != null && c !== false) el.append(c.nodeType ? c : String(c));
  return el;
}
function show(...nodes) { app.replaceChildren(...nodes.filter((n) => n)); }
function message(el, text, cls = "error") { el.className = cls; el.textContent = text; }

/** "4 hours", "2 hours 30 minutes", "45 minutes". */
function duration(minutes) {
  const h = Math.floor(minutes / 60), m = minutes % 60;
  const part = (n, one) => (n ? `${n} ${one}${n === 1 ? "" : "s"}` : "");
  return [part(h, "hour"), part(m, "minute")].filter(Boolean).join(" ") || "0 minutes";
}

function describeBrowser(ua) {
  const browser = /Edg\//.test(ua) ? "Edge" : /Chrome\//.test(ua) ? "Chrome" : /Firefox\//.test(ua) ? "Firefox" : /Safari\//.test(ua) ? "Safari" : "a browser";
  const os = /Windows/.test(ua) ? "Windows" : /Mac OS X/.test(ua) ? "macOS" : /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Linux/.test(ua) ? "Linux" : "an unknown system";
  return `${browser} on ${os}`;
}

// ---------- screens ----------
async function home(note) {
  const d = await device();
  if (!d.id) {
    const status = h("p", { id: "status" });
    const btn = h("button", { id: "enroll", onclick: async () => {
      btn.disabled = true;
      try { await enroll(); await route(); } catch (e) { message(status, e.message); btn.disabled = false; }
    } }, "Set up this phone");
    return show(
      h("h1", {}, "Set up Gatehouse"),
      h("div", { class: "card" },
        h("p", {}, "This phone gets its own key. It never leaves the phone, and it is what proves it is you when you scan a sign-in code."),
        btn, status),
    );
  }
  const status = h("p", { id: "status" });
  if (note) message(status, note, "ok");
  const emailInput = h("input", { id: "email", type: "email", autocomplete: "email", inputmode: "email", placeholder: "you@company.com", required: true });
  const codeInput = h("input", { id: "code", inputmode: "numeric", autocomplete: "one-time-code", maxlength: "6", placeholder: "6-digit code" });
  const codeBox = h("div", { id: "code-box", hidden: true },
    h("label", { for: "code" }, "Code from the email"), codeInput,
    h("button", { id: "confirm-code", type: "submit" }, "Verify email"));
  let pendingEmail = null;
  const form = h("form", { id: "email-form", onsubmit: async (ev) => {
    ev.preventDefault();
    const btns = form.querySelectorAll("button");
    btns.forEach((b) => (b.disabled = true));
    try {
      if (!pendingEmail) {
        const email = emailInput.value.trim();
        const jws = await sign(d.keys.privateKey, { purpose: "verify_email", device_id: d.id, email });
        await call("POST", `/devices/${d.id}/emails`, { jws });
        pendingEmail = email;
        emailInput.readOnly = true;
        codeBox.hidden = false;
        sendBtn.hidden = true;
        message(status, `We sent a code to ${email}. It is valid for 10 minutes.`, "ok");
        codeInput.focus();
      } else {
        const jws = await sign(d.keys.privateKey, { purpose: "confirm_email", device_id: d.id, email: pendingEmail, code: codeInput.value.trim() });
        const res = await call("POST", `/devices/${d.id}/emails/confirm`, { jws });
        const emails = [...new Set([...(await kvGet("emails") || []), res.email])];
        await kvSet("emails", emails);
        const back = sessionStorage.getItem("gatehouse.return");
        if (back) { sessionStorage.removeItem("gatehouse.return"); history.pushState({}, "", back); return route(); }
        return home(`${res.email} is verified on this phone.`);
      }
    } catch (e) {
      message(status, e.message);
      if (e.code === "device_revoked" || e.code === "unknown_device") { await dropKey(); return home(); }
      if (e.code === "too_many_attempts" || e.code === "email_locked" || e.code === "code_expired" || e.code === "no_code") {
        pendingEmail = null; emailInput.readOnly = false; codeBox.hidden = true; sendBtn.hidden = false; codeInput.value = "";
      }
    } finally {
      btns.forEach((b) => (b.disabled = false));
    }
  } },
    h("label", { for: "email" }, "Work email"), emailInput);
  const sendBtn = h("button", { id: "send-code", type: "submit" }, "Send code");
  form.append(sendBtn, codeBox);

  show(
    h("h1", {}, "Your Gatehouse"),
    status,
    h("div", { class: "card" },
      h("h2", {}, "Verified emails"),
      d.emails.length
        ? h("ul", { class: "emails", id: "verified-emails" }, d.emails.map((e) => h("li", {}, e)))
        : h("p", { class: "muted", id: "verified-emails" }, "None yet. Verify your work email to sign in."),
      h("h2", {}, "Add an email"), form),
    scanCard(),
    forgetCard(),
  );
}

function forgetCard() {
  const out = h("p", {});
  const btn = h("button", { id: "forget", class: "danger", onclick: async () => {
    if (!confirm("Forget this phone? It will sign nobody in any more, and the sign-ins it approved end.")) return;
    btn.disabled = true;
    try { await forget(); await home(); } catch (e) { message(out, e.message); btn.disabled = false; }
  } }, "Forget this phone");
  return h("div", { class: "card" },
    h("h2", {}, "Lost or handing on this phone?"),
    h("p", { class: "muted" }, "Forgetting it revokes its key everywhere and ends the sign-ins it approved. An admin can also revoke a lost phone in the portal."),
    btn, out);
}

function scanCard() {
  const out = h("p", {});
  const linkInput = h("input", { id: "scan-link-input", type: "url", placeholder: "https://…/app/scan?…" });
  const card = h("div", { class: "card" },
    h("h2", {}, "Sign in on a computer"),
    h("p", { class: "muted" }, "Scan the QR code on the sign-in page with your camera, or paste its link here."));
  if ("BarcodeDetector" in window && navigator.mediaDevices) {
    card.append(h("button", { id: "scan", onclick: () => scanWithCamera(card, out) }, "Scan QR code"));
  }
  card.append(
    h("form", { onsubmit: (ev) => {
      ev.preventDefault();
      try {
        const u = new URL(linkInput.value.trim());
        if (!u.pathname.endsWith("/app/scan")) throw new Error();
        history.pushState({}, "", `/app/scan${u.search}`);
        route();
      } catch { message(out, "That is not a Gatehouse sign-in link."); }
    } }, linkInput, h("button", { class: "secondary", type: "submit" }, "Open link")),
    out);
  return card;
}

async function scanWithCamera(card, out) {
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    const video = h("video", { playsinline: true, muted: true });
    video.srcObject = stream;
    card.prepend(video);
    await video.play();
    const detector = new BarcodeDetector({ formats: ["qr_code"] });
    const tick = async () => {
      const codes = await detector.detect(video).catch(() => []);
      if (codes.length) {
        stream.getTracks().forEach((t) => t.stop());
        const u = new URL(codes[0].rawValue);
        history.pushState({}, "", `/app/scan${u.search}`);
        return route();
      }
      requestAnimationFrame(tick);
    };
    tick();
  } catch (e) {
    message(out, "The camera is not available; paste the link instead.");
  }
}

async function scan(params) {
  const tenant = params.get("tenant");
  const challenge = params.get("challenge");
  const d = await device();
  if (!tenant || !challenge) return home();
  if (!d.id || d.emails.length === 0) {
    sessionStorage.setItem("gatehouse.return", location.pathname + location.search);
    await home();
    const status = document.getElementById("status");
    message(status, d.id ? "Verify your work email first; then the sign-in continues." : "Set up this phone first; then verify your work email and the sign-in continues.");
    return;
  }
  let info;
  try {
    info = await call("GET", `/challenges/${encodeURIComponent(challenge)}?tenant=${encodeURIComponent(tenant)}`);
  } catch (e) {
    return outcome(false, e.message);
  }
  const status = h("p", { id: "status" });
  const expires = new Date(info.expires_at);
  const left = h("span", { id: "expires-in" });
  const tick = () => {
    const s = Math.max(0, Math.round((expires - Date.now()) / 1000));
    left.textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
    if (s === 0) { clearInterval(timer); outcome(false, info.access ? "The request has expired; ask again on the computer." : "The sign-in request has expired; the screen shows a new code."); }
  };
  const timer = setInterval(tick, 250);
  tick();
  const act = async (path, payload) => {
    app.querySelectorAll("button").forEach((b) => (b.disabled = true));
    try {
      const jws = await sign(d.keys.privateKey, { device_id: d.id, tenant, challenge, ...payload });
      const res = await call("POST", `/challenges/${encodeURIComponent(challenge)}/${path}?tenant=${encodeURIComponent(tenant)}`, { jws });
      clearInterval(timer);
      if (path === "approve" && access) outcome(true, `Approved: ${access.account} opens at ${access.customer}. The computer shows how to sign in.`);
      else if (path === "approve") outcome(true, `Signed in to ${info.tenant_name} as ${res.user.username}.`);
      else if (access) outcome(false, `You denied this request. Nothing was opened at ${access.customer}.`, "denied");
      else outcome(false, "You denied this sign-in. Nobody was signed in.", "denied");
    } catch (e) {
      clearInterval(timer);
      outcome(false, e.message, undefined, e.code);
    }
  };
  // An access request names the customer, the account and the roles it opens.
  const access = info.access || null;
  show(
    h("h1", {}, access ? `Open your account at ${access.customer}?` : `Sign in to ${info.tenant_name}?`),
    access && h("div", { class: "card", id: "access-request" },
      h("dl", {},
        h("dt", {}, "Customer"), h("dd", { id: "access-customer" }, access.customer),
        h("dt", {}, "Account"), h("dd", { id: "access-account" }, access.account),
        h("dt", {}, "Roles"), h("dd", { id: "access-roles" }, access.roles.join(", ")),
        h("dt", {}, "For"), h("dd", { id: "access-window" }, duration(access.window_minutes)))),
    h("div", { class: "card" },
      h("dl", {},
        h("dt", {}, "Organisation"), h("dd", { id: "tenant-name" }, info.tenant_name),
        h("dt", {}, "Web address"), h("dd", { id: "tenant-host" }, info.tenant_host),
        h("dt", {}, "Browser"), h("dd", { id: "user-agent", title: info.user_agent }, describeBrowser(info.user_agent)),
        h("dt", {}, "IP address"), h("dd", { id: "requester-ip" }, info.requester_ip),
        h("dt", {}, "Expires in"), h("dd", {}, left))),
    h("div", { class: "card" },
      h("p", {}, "Check that the computer's address bar shows the web address above, then tap the number on its screen."),
      h("div", { class: "numbers", id: "numbers" },
        info.numbers.map((n) => h("button", { "data-number": n, onclick: () => act("approve", { purpose: "approve", number: n }) }, String(n).padStart(2, "0")))),
      h("button", { id: "deny", class: "danger", onclick: () => act("deny", { purpose: "deny" }) }, "This wasn't me — deny"),
      status),
  );
}

function outcome(ok, text, kind, code) {
  const done = () => { history.pushState({}, "", "/app"); route(); };
  // A revoked or forgotten phone enrolls anew with a new key; an expired email is verified again.
  const next = code === "device_revoked" || code === "unknown_device"
    ? h("button", { id: "re-enroll", onclick: async () => { await dropKey(); done(); } }, "Set up this phone again")
    : code === "email_unverified"
      ? h("button", { id: "verify-again", onclick: async () => { await kvSet("emails", []); done(); } }, "Verify your email again")
      : null;
  show(
    h("div", { class: "card outcome", id: "outcome", "data-outcome": ok ? "approved" : (kind || "refused"), "data-code": code || null },
      h("p", { class: "big" }, ok ? "✓" : "✕"),
      h("p", { class: ok ? "ok" : "error", id: "outcome-message" }, text),
      next,
      h("button", { class: "secondary", onclick: done }, "Done")),
  );
}

async function route() {
  if (!window.isSecureContext || !crypto.subtle) {
    return show(h("p", { class: "error" }, "Open the Gatehouse app over https (or on localhost): the phone's key needs the browser's secure cryptography."));
  }
  const url = new URL(location.href);
  try {
    if (url.pathname === "/app/scan") await scan(url.searchParams);
    else await home();
  } catch (e) {
    show(h("p", { class: "error" }, e.message || String(e)));
  }
}

window.addEventListener("popstate", route);
route();
