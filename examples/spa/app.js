// A single-page app on flask_jwt_authentication in cookie mode
// (JWT_AUTH_REFRESH_COOKIE = True), in plain JavaScript.
//
// The access token lives in a variable of this script and nowhere else: not in
// localStorage, sessionStorage or a cookie, where any script of the page, or
// anyone with the disk, could read it. The refresh token lives in an HttpOnly
// cookie that the browser sends to the refresh endpoint only; this script never
// sees it. A reload loses the access token, and the refresh cookie brings a new
// one.
"use strict";

// The server's JWT_AUTH_URL_PREFIX.
const AUTH = "/jwt-authentication/api/auth";
// A refresh with the cookie must carry this header
// (JWT_AUTH_REFRESH_COOKIE_CSRF_HEADER), which a cross-site form cannot send.
const CSRF_HEADER = { "X-Requested-With": "fetch" };

let accessToken = null; // the access token; null when logged out
let refreshTimer = null; // the scheduled silent refresh
let refreshing = null; // the refresh in flight, shared by every caller

const $ = (id) => document.getElementById(id);

// A JSON POST to an endpoint of the extension; the browser adds the refresh
// cookie where its path matches.
function post(path, { body, headers = {} } = {}) {
  return fetch(AUTH + path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

// Keeps the access token of a new pair and schedules the next refresh ahead of
// its expiry: a minute early, or half-way for lifetimes under two minutes.
function keep(pair) {
  accessToken = pair.access_token;
  clearTimeout(refreshTimer);
  const early = Math.min(60, pair.expires_in / 2);
  refreshTimer = setTimeout(silentRefresh, (pair.expires_in - early) * 1000);
}

function forget() {
  accessToken = null;
  clearTimeout(refreshTimer);
  refreshTimer = null;
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
  const send = () =>
    fetch(url, {
      ...options,
      credentials: "same-origin",
      headers: { ...options.headers, Authorization: `Bearer ${accessToken}` },
    });
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

// The bearer token says which session ends; the answer clears the refresh
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
