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

async function refreshOnce() {
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
  await fetch('/api/v1/auth/session', { method: 'DELETE', headers: HEADERS, credentials: 'same-origin' });
  token = null;
}

/** `fetch` of an API path with the access token; JSON in and out; errors carry the API's
 * message. */
export async function api(path, { method = 'GET', body } = {}) {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    const headers = { Authorization: `Bearer ${token}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (r.status === 401 && attempt === 0 && (await refresh())) continue;
    const data = await r.json().catch(() => ({}));
    if (!r.ok) {
      const e = new Error(data.error ? data.error.message : `HTTP ${r.status}`);
      e.status = r.status;
      throw e;
    }
    return data;
  }
  throw new Error('signed out');
}
