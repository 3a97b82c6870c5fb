// The signed-in session of the pages: the access token lives in this module's memory only;
// the refresh token is the HttpOnly `refract_session` cookie, which only the session routes
// see. `api()` calls the public API with the token and refreshes it once on a 401.
let token = null;

const HEADERS = { 'X-Requested-With': 'refract-ui' };

let inflight = null;

/** A new access token from the session cookie; `false` when there is no session. One refresh
 * at a time: the cookie rotates, and presenting a spent one would end the session. */
export function refresh() {
  if (!inflight) inflight = refreshOnce().finally(() => { inflight = null; });
  return inflight;
}

// A headless setup signs in with an API key instead: it is kept in this tab's sessionStorage
// (gone when the tab closes; never in a cookie, so no other request carries it) and sent as
// the bearer token.
const KEY = 'refract-api-key';

async function withKey(key) {
  const r = await fetch('/api/v1/keys/validate', { method: 'POST', headers: { Authorization: `Bearer ${key}` } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok || !body.valid) throw new Error(body.error ? body.error.message : 'this key is not valid');
  token = key;
  return { email: `API key ${body.key_id}`, role: 'key', tenant: body.tenant, scopes: body.scopes };
}

/** Sign in with an API key (kept for this tab only). */
export async function signInWithKey(key) {
  const user = await withKey(key.trim());
  sessionStorage.setItem(KEY, key.trim());
  return user;
}

async function refreshOnce() {
  const key = sessionStorage.getItem(KEY);
  if (key) {
    try { return await withKey(key); } catch (_) { sessionStorage.removeItem(KEY); return false; }
  }
  const r = await fetch('/api/v1/auth/session/refresh', { method: 'POST', headers: HEADERS, credentials: 'same-origin' });
  if (!r.ok) return false;
  const body = await r.json();
  token = body.access_token;
  return body.user;
}

/** The access token, for requests `api()` cannot make (uploads with progress). */
export const currentToken = () => token;

export async function signIn(email, password) {
  const r = await fetch('/api/v1/auth/session', {
    method: 'POST',
    headers: { ...HEADERS, 'Content-Type': 'application/json' },
    credentials: 'same-origin',
    body: JSON.stringify({ email, password }),
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error ? body.error.message : `HTTP ${r.status}`);
  token = body.access_token;
  return body.user;
}

export async function signOut() {
  sessionStorage.removeItem(KEY);
  await fetch('/api/v1/auth/session', { method: 'DELETE', headers: HEADERS, credentials: 'same-origin' });
  token = null;
}

/** `fetch` with the access token (refreshed once on a 401); the Response as it came. */
export async function authFetch(path, { method = 'GET', body, headers = {} } = {}) {
  let r;
  for (let attempt = 0; attempt < 2; attempt += 1) {
    const h = { ...headers, Authorization: `Bearer ${token}` };
    if (body !== undefined) h['Content-Type'] = 'application/json';
    r = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
    if (r.status === 401 && attempt === 0 && !sessionStorage.getItem(KEY) && (await refresh())) continue;
    break;
  }
  return r;
}

/** The API's error message of a failed Response. */
export async function failure(r) {
  const data = await r.json().catch(() => ({}));
  const e = new Error(data.error ? data.error.message : `HTTP ${r.status}`);
  e.status = r.status;
  return e;
}

/** An API call with the access token; JSON in and out; errors carry the API's message. */
export async function api(path, { method = 'GET', body } = {}) {
  const r = await authFetch(path, { method, body });
  if (!r.ok) throw await failure(r);
  return r.json().catch(() => ({}));
}
