// A single-page app on flask_jwt_authentication in cookie mode
// (JWT_AUTH_REFRESH_COOKIE = True) with DPoP (JWT_AUTH_DPOP = "allowed",
// RFC 9449), in plain JavaScript.
//
// The access token lives in a variable of this script and nowhere else: not in
// localStorage, sessionStorage or a cookie, where any script of the page, or
// anyone with the disk, could read it. The refresh token lives in an HttpOnly
// cookie that the browser sends to the refresh endpoint only; this script never
// sees it. A reload loses the access token, and the refresh cookie brings a new
// one.
//
// Both tokens are bound to a key pair of this browser: every log-in, refresh
// and call carries a proof signed by its private key, which WebCrypto made
// non-extractable, so not even this script can read it out. A token carried
// off to another machine is useless there.
"use strict";

// The server's JWT_AUTH_URL_PREFIX.
const AUTH = "/jwt-authentication/api/auth";
// A refresh with the cookie must carry this header
// (JWT_AUTH_REFRESH_COOKIE_CSRF_HEADER), which a cross-site form cannot send.
const CSRF_HEADER = { "X-Requested-With": "fetch" };

let accessToken = null; // the access token; null when logged out
let tokenType = "DPoP"; // the scheme the access token goes with
let refreshTimer = null; // the scheduled silent refresh
let refreshing = null; // the refresh in flight, shared by every caller
let dpopNonce = null; // the server's last DPoP-Nonce, if it sends them

const $ = (id) => document.getElementById(id);

// A JSON POST to an endpoint of the extension, with a DPoP proof; the browser
// adds the refresh cookie where its path matches.
function post(path, { body, headers = {} } = {}) {
  return withProof("POST", AUTH + path, null, (proof) =>
    fetch(AUTH + path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", ...headers, DPoP: proof },
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  );
}

// Keeps the access token of a new pair and schedules the next refresh ahead of
// its expiry: a minute early, or half-way for lifetimes under two minutes.
function keep(pair) {
  accessToken = pair.access_token;
  tokenType = pair.token_type;
  clearTimeout(refreshTimer);
  const early = Math.min(60, pair.expires_in / 2);
  refreshTimer = setTimeout(silentRefresh, (pair.expires_in - early) * 1000);
}

function forget() {
  accessToken = null;
  clearTimeout(refreshTimer);
  refreshTimer = null;
}

// DPoP (RFC 9449) ---------------------------------------------------------------

// The browser's key pair, made once and kept in IndexedDB: an ECDSA P-256 key
// (ES256) whose private half is non-extractable. IndexedDB stores the CryptoKey
// object itself, never its bytes.
const KEY_STORE = { database: "dpop", store: "keys", name: "dpop-key" };
let dpopKey = null; // the promise of { privateKey, publicKey, jwk }

function dpopKeyPair() {
  dpopKey ??= loadOrMakeKey().catch((error) => {
    dpopKey = null;
    throw error;
  });
  return dpopKey;
}

function keyStore(mode, action) {
  return new Promise((resolve, reject) => {
    const opening = indexedDB.open(KEY_STORE.database, 1);
    opening.onupgradeneeded = () => opening.result.createObjectStore(KEY_STORE.store);
    opening.onerror = () => reject(opening.error);
    opening.onsuccess = () => {
      const database = opening.result;
      const transaction = database.transaction(KEY_STORE.store, mode);
      const request = action(transaction.objectStore(KEY_STORE.store));
      transaction.oncomplete = () => {
        database.close();
        resolve(request.result);
      };
      transaction.onerror = () => {
        database.close();
        reject(transaction.error);
      };
    };
  });
}

async function loadOrMakeKey() {
  let pair = await keyStore("readonly", (store) => store.get(KEY_STORE.name));
  if (!pair) {
    pair = await crypto.subtle.generateKey(
      { name: "ECDSA", namedCurve: "P-256" },
      false, // extractable: the private key never leaves WebCrypto
      ["sign", "verify"],
    );
    await keyStore("readwrite", (store) => store.put(pair, KEY_STORE.name));
  }
  // A public key is always exportable; the proof's jwk header carries the
  // members RFC 7638 hashes, nothing else.
  const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", pair.publicKey);
  return { ...pair, jwk: { kty, crv, x, y } };
}

const utf8 = (text) => new TextEncoder().encode(text);
const base64url = (bytes) =>
  btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");

// A proof for one request (RFC 9449 §4.2): the method, the URL without query or
// fragment, now, a fresh jti, and on calls with an access token its SHA-256
// (ath). WebCrypto's ECDSA signature is the raw r || s that JWS wants.
async function dpopProof(method, url, token) {
  const { privateKey, jwk } = await dpopKeyPair();
  const htu = new URL(url, location.href);
  htu.search = "";
  htu.hash = "";
  const claims = {
    htm: method,
    htu: htu.href,
    iat: Math.floor(Date.now() / 1000),
    jti: crypto.randomUUID(),
  };
  if (dpopNonce) {
    claims.nonce = dpopNonce;
  }
  if (token) {
    claims.ath = base64url(await crypto.subtle.digest("SHA-256", utf8(token)));
  }
  const header = { typ: "dpop+jwt", alg: "ES256", jwk };
  const input = `${base64url(utf8(JSON.stringify(header)))}.${base64url(
    utf8(JSON.stringify(claims)),
  )}`;
  const signature = await crypto.subtle.sign(
    { name: "ECDSA", hash: "SHA-256" },
    privateKey,
    utf8(input),
  );
  return `${input}.${base64url(signature)}`;
}

// Sends a request made by send(proof), with a fresh proof for it. A server
// with JWT_AUTH_DPOP_NONCE hands out nonces (RFC 9449 §8, §9) in the DPoP-Nonce
// header of its answers: the page keeps the last one for its next proofs, and
// when a proof is refused for want of it, signs a new one and asks once more.
async function withProof(method, url, token, send) {
  let response = await send(await dpopProof(method, url, token));
  if (keepNonce(response) && (await asksForNonce(response))) {
    response = await send(await dpopProof(method, url, token));
    keepNonce(response);
  }
  return response;
}

function keepNonce(response) {
  const nonce = response.headers.get("DPoP-Nonce");
  if (nonce) {
    dpopNonce = nonce;
  }
  return Boolean(nonce);
}

// 400 use_dpop_nonce from the log-in and refresh endpoints, 401 with a DPoP
// error="use_dpop_nonce" challenge from a protected route.
async function asksForNonce(response) {
  if (response.status === 401) {
    const challenge = response.headers.get("WWW-Authenticate") ?? "";
    return challenge.includes('error="use_dpop_nonce"');
  }
  if (response.status !== 400) {
    return false;
  }
  const body = await response
    .clone()
    .json()
    .catch(() => null);
  return body?.error === "use_dpop_nonce";
}

// Exchanges the refresh cookie for a new pair; resolves to true on success.
// One refresh at a time: the first consumes the cookie's token, and the server
// takes a second use of a consumed token for theft and ends the session.
function refresh() {
  refreshing ??= requestRefresh().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

async function requestRefresh() {
  const response = await post("/refresh", { headers: CSRF_HEADER });
  if (!response.ok) {
    forget();
    return false;
  }
  keep(await response.json());
  return true;
}

async function silentRefresh() {
  try {
    if (!(await refresh())) {
      showLogin("Your session has ended; please log in again.");
    }
  } catch {
    // Offline: the next call gets a 401 and refreshes then.
    showStatus("The server could not be reached to refresh the session.");
  }
}

// Calls a protected route with the access token. After a 401 (the token
// expired while the laptop slept, or the timer ran late) it refreshes once and
// retries once.
async function authorized(url, options = {}) {
  const method = options.method ?? "GET";
  const send = () =>
    withProof(method, url, accessToken, (proof) =>
      fetch(url, {
        ...options,
        credentials: "same-origin",
        headers: {
          ...options.headers,
          Authorization: `${tokenType} ${accessToken}`,
          DPoP: proof,
        },
      }),
    );
  let response = await send();
  if (response.status === 401 && (await refresh())) {
    response = await send();
  }
  return response;
}

async function logIn(event) {
  event.preventDefault();
  const fields = event.target.elements;
  const response = await post("/tokens", {
    headers: CSRF_HEADER,
    body: { username: fields.username.value, password: fields.password.value },
  });
  const body = await response.json();
  if (!response.ok) {
    showStatus(body.error_description);
    return;
  }
  event.target.reset();
  keep(body);
  showAccount();
  await showMe();
}

async function showMe() {
  $("result").textContent = "Calling /api/me…";
  const response = await authorized("/api/me");
  if (response.status === 401) {
    showLogin("Your session has ended; please log in again.");
    return;
  }
  const body = await response.json();
  $("result").textContent = JSON.stringify(body, null, 2);
  if (response.ok) {
    $("username").textContent = body.username;
  }
}

// The access token says which session ends; the answer clears the refresh
// cookie, so it carries the same header as a refresh.
async function logOut() {
  // No refresh may run alongside: the cookie it sets would outlive the log-out.
  clearTimeout(refreshTimer);
  await refreshing;
  const response = await authorized(`${AUTH}/logout`, {
    method: "POST",
    headers: CSRF_HEADER,
  });
  showLogin(response.ok ? "Logged out." : "Your session had already ended.");
}

function showStatus(text) {
  $("status").textContent = text;
}

function showLogin(text) {
  forget();
  $("account").hidden = true;
  $("result").textContent = "";
  $("login").hidden = false;
  showStatus(text);
}

function showAccount() {
  $("login").hidden = true;
  $("account").hidden = false;
  showStatus("");
}

// Runs an action of the page, reporting a failed request instead of throwing.
function run(action) {
  action.catch(() => showStatus("The server could not be reached; try again."));
}

// On load, the refresh cookie of an earlier visit logs the user back in.
async function start() {
  $("login").addEventListener("submit", (event) => run(logIn(event)));
  $("call").addEventListener("click", () => run(showMe()));
  $("logout").addEventListener("click", () => run(logOut()));
  if (await refresh()) {
    showAccount();
    await showMe();
  } else {
    showLogin("Please log in.");
  }
}

run(start());
