//! `/api/v1/auth/...`: log in, refresh, log out, and the logged-in user's own account.
//!
//! Invariants: one answer ("invalid email or password", 401) for an unknown email, a wrong
//! password and a disabled user; no token or password in a log line or an error body.

use super::view::rfc3339;
use super::{json, json_body, Ctx};
use crate::access::accounts::{self, LoginError, Tokens};
use crate::error::Error;
use crate::http::response::Body;
use crate::store::UserRecord;
use crate::util::clock::now_ms;
use http::Response;
use serde::Deserialize;
use serde_json::{json as j, Value};

/// The USER object.
pub(crate) fn user_view(u: &UserRecord) -> Value {
    j!({
        "id": u.id,
        "email": u.email,
        "name": u.name,
        "role": u.role,
        "tenant": u.tenant,
        "scopes": u.scopes,
        "disabled": u.disabled,
        "created_at": rfc3339(u.created_at),
        "updated_at": rfc3339(u.updated_at),
    })
}

fn answer(t: &Tokens) -> Response<Body> {
    json(&j!({
        "success": true,
        "access_token": t.access,
        "token_type": "Bearer",
        "expires_in": t.expires_in,
        "refresh_token": t.refresh,
        "user": user_view(&t.user),
    }))
}

fn refused(e: LoginError) -> Error {
    match e {
        LoginError::Invalid => Error::Unauthorized("invalid email or password".into()),
        LoginError::Throttled(s) => Error::RateLimited { retry_after: s },
        LoginError::Busy => Error::Busy,
        LoginError::Store(e) => e.into(),
        LoginError::Internal(m) => Error::Internal(m),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    email: String,
    password: String,
}

/// `POST /api/v1/auth/login` `{email, password}`.
pub(crate) async fn login(ctx: Ctx<'_>) -> Result<Response<Body>, Error> {
    let (ctl, ip) = (ctx.ctl, ctx.ip);
    let b: Login = json_body(ctx.req).await?;
    if b.password.len() > 4096 {
        return Err(Error::Unauthorized("invalid email or password".into()));
    }
    let t = ctl
        .accounts
        .login(&b.email, &b.password, ip)
        .await
        .map_err(refused)?;
    Ok(answer(&t))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Register {
    email: String,
    password: String,
    #[serde(default)]
    name: String,
}

/// `POST /api/v1/auth/register` `{email, password, name?}` (only with `accounts.registration =
/// "open"`): a new tenant and its first member. 202 whether or not the email was free (no
/// account is revealed); then log in, and create the tenant's keys at `/api/v1/keys`.
pub(crate) async fn register(ctx: Ctx<'_>) -> Result<Response<Body>, Error> {
    let ctl = ctx.ctl;
    if !ctl.registration_open {
        return Err(Error::Forbidden("registration is closed here".into()));
    }
    let b: Register = json_body(ctx.req).await?;
    let email = accounts::valid_email(&b.email)
        .ok_or_else(|| Error::bad_param("email", "not an email address"))?;
    accounts::valid_password(&b.password).map_err(|m| Error::bad_param("password", m))?;
    let name = b.name.trim().to_string();
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(Error::bad_param("name", "at most 200 characters"));
    }
    ctl.accounts
        .register(&email, &b.password, &name)
        .await
        .map_err(refused)?;
    Ok(crate::http::response::json_accepted(
        &j!({
            "success": true,
            "message": "if this email had no account, it has one now: log in, then create \
                        your tenant's API keys at /api/v1/keys",
        }),
        "no-store",
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

/// `POST /api/v1/auth/refresh` `{refresh_token}`: a new pair; the old refresh token is spent
/// (presenting it again revokes the session).
pub(crate) async fn refresh(ctx: Ctx<'_>) -> Result<Response<Body>, Error> {
    let ctl = ctx.ctl;
    let b: RefreshBody = json_body(ctx.req).await?;
    let t = ctl
        .accounts
        .refresh(&b.refresh_token)
        .await
        .map_err(|e| match e {
            LoginError::Invalid => Error::Unauthorized("invalid or revoked refresh token".into()),
            other => refused(other),
        })?;
    Ok(answer(&t))
}

/// The browser session's cookie: the refresh token, `HttpOnly` (no script reads it),
/// `SameSite=Strict` (no other site's page sends it), `Secure` when served over https, and
/// only on the session routes.
const COOKIE: &str = "refract_session";
const COOKIE_PATH: &str = "/api/v1/auth/session";

fn set_cookie(resp: &mut Response<Body>, value: &str, max_age: i64, secure: bool) {
    let v = format!(
        "{COOKIE}={value}; Path={COOKIE_PATH}; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    );
    if let Ok(h) = http::HeaderValue::from_str(&v) {
        resp.headers_mut().append(http::header::SET_COOKIE, h);
    }
}

fn session_cookie(ctx: &Ctx<'_>) -> Option<String> {
    ctx.req
        .headers()
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty() && v.len() <= 512)
}

/// Served over https (the public URL, or what the proxy in front says).
fn over_https(ctx: &Ctx<'_>) -> bool {
    ctx.ctl
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
        || ctx
            .req
            .headers()
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// The session routes need `X-Requested-With` (any value): a header a page of another origin
/// cannot send without a CORS preflight, which this server never grants.
fn same_origin_script(ctx: &Ctx<'_>) -> Result<(), Error> {
    if ctx.req.headers().contains_key("x-requested-with") {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "session routes need the X-Requested-With header".into(),
        ))
    }
}

/// The answer of a session route: the access token and the user, the refresh token only in
/// the cookie.
fn session_answer(ctx_secure: bool, t: &Tokens, max_age: i64) -> Response<Body> {
    let mut r = json(&j!({
        "success": true,
        "access_token": t.access,
        "token_type": "Bearer",
        "expires_in": t.expires_in,
        "user": user_view(&t.user),
    }));
    set_cookie(&mut r, &t.refresh, max_age, ctx_secure);
    r
}

/// `POST /api/v1/auth/session` `{email, password}`: log in for a browser. The refresh token is
/// set as the `refract_session` cookie, never given to script.
pub(crate) async fn session_login(ctx: Ctx<'_>) -> Result<Response<Body>, Error> {
    same_origin_script(&ctx)?;
    let (ctl, ip, secure) = (ctx.ctl, ctx.ip, over_https(&ctx));
    let b: Login = json_body(ctx.req).await?;
    if b.password.len() > 4096 {
        return Err(Error::Unauthorized("invalid email or password".into()));
    }
    let t = ctl
        .accounts
        .login(&b.email, &b.password, ip)
        .await
        .map_err(refused)?;
    Ok(session_answer(secure, &t, ctl.accounts.session_secs()))
}

/// `POST /api/v1/auth/session/refresh`: a new access token from the cookie (which rotates; a
/// spent one revokes the session, as for `/auth/refresh`). Without a valid cookie: 401, and the
/// cookie is cleared.
pub(crate) async fn session_refresh(ctx: Ctx<'_>) -> Result<Response<Body>, Error> {
    same_origin_script(&ctx)?;
    let (ctl, secure) = (ctx.ctl, over_https(&ctx));
    let Some(token) = session_cookie(&ctx) else {
        return Err(Error::Unauthorized("no session: sign in".into()));
    };
    match ctl.accounts.refresh(&token).await {
        Ok(t) => Ok(session_answer(secure, &t, ctl.accounts.session_secs())),
        Err(LoginError::Invalid) => {
            let mut r = crate::http::response::error(
                &Error::Unauthorized("the session has ended: sign in".into()),
                false,
            );
            set_cookie(&mut r, "", 0, secure);
            Ok(r)
        }
        Err(e) => Err(refused(e)),
    }
}

/// `DELETE /api/v1/auth/session`: sign out; the session ends at once and the cookie is cleared.
pub(crate) async fn session_logout(ctx: Ctx<'_>) -> Result<Response<Body>, Error> {
    same_origin_script(&ctx)?;
    let (ctl, secure) = (ctx.ctl, over_https(&ctx));
    if let Some(token) = session_cookie(&ctx) {
        ctl.accounts.end_session(&token).await?;
    }
    let mut r = json(&j!({ "success": true }));
    set_cookie(&mut r, "", 0, secure);
    Ok(r)
}

/// The logged-in user behind the request (a JWT, not an API key), and its session.
async fn me_of(ctx: &Ctx<'_>) -> Result<(UserRecord, String), Error> {
    let token = crate::http::request::presented_key(ctx.req.headers())
        .filter(|t| accounts::looks_like_jwt(t))
        .ok_or_else(|| Error::Unauthorized("log in: this route needs an access token".into()))?;
    ctx.ctl
        .accounts
        .identify(token)
        .await?
        .map(|(_, u, s)| (u, s))
        .ok_or_else(|| Error::Unauthorized("invalid or expired access token".into()))
}

/// `POST /api/v1/auth/logout`: the session ends at once (its access and refresh tokens). With
/// an access token; or, once it has expired, with `{refresh_token}`.
pub(crate) async fn logout(ctx: Ctx<'_>) -> Result<Response<Body>, Error> {
    let ctl = ctx.ctl;
    if let Ok((u, session)) = me_of(&ctx).await {
        ctl.store.revoke_session(&session, &u.id, now_ms()).await?;
        return Ok(json(&j!({ "success": true })));
    }
    let b: Option<RefreshBody> = super::optional_json_body(ctx.req).await?;
    let token = b.map(|b| b.refresh_token).ok_or_else(|| {
        Error::Unauthorized("log out with an access token or {refresh_token}".into())
    })?;
    if !ctl.accounts.end_session(&token).await? {
        return Err(Error::Unauthorized(
            "invalid or revoked refresh token".into(),
        ));
    }
    Ok(json(&j!({ "success": true })))
}

/// `GET /api/v1/auth/me`.
pub(crate) async fn me(ctx: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let (u, _) = me_of(ctx).await?;
    Ok(json(&j!({ "success": true, "user": user_view(&u) })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MePatch {
    name: Option<String>,
}

/// `PATCH /api/v1/auth/me` `{name}`.
pub(crate) async fn patch_me(ctx: Ctx<'_>) -> Result<Response<Body>, Error> {
    let (u, _) = me_of(&ctx).await?;
    let ctl = ctx.ctl;
    let b: MePatch = json_body(ctx.req).await?;
    if let Some(name) = b.name {
        let name = name.trim().to_string();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(Error::bad_param("name", "a name is 1-200 characters"));
        }
        ctl.store.set_user_name(&u.id, &name, now_ms()).await?;
    }
    let u = ctl
        .store
        .user(&u.id)
        .await?
        .ok_or_else(|| Error::Unauthorized("invalid or expired access token".into()))?;
    Ok(json(&j!({ "success": true, "user": user_view(&u) })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    old_password: String,
    new_password: String,
}

/// `POST /api/v1/auth/me/password` `{old_password, new_password}`: every other session ends.
pub(crate) async fn password(ctx: Ctx<'_>) -> Result<Response<Body>, Error> {
    let (u, session) = me_of(&ctx).await?;
    let (ctl, ip) = (ctx.ctl, ctx.ip);
    let b: PasswordBody = json_body(ctx.req).await?;
    accounts::valid_password(&b.new_password).map_err(|m| Error::bad_param("new_password", m))?;
    if b.old_password.len() > 4096 {
        return Err(Error::Forbidden("the old password is wrong".into()));
    }
    let ok = ctl
        .accounts
        .check_own_password(&u, &b.old_password, ip)
        .await
        .map_err(refused)?;
    if !ok {
        return Err(Error::Forbidden("the old password is wrong".into()));
    }
    let hash = ctl
        .accounts
        .new_hash(&b.new_password)
        .await
        .map_err(refused)?;
    ctl.store
        .set_password(&u.id, &hash, Some(&session), now_ms())
        .await?;
    Ok(json(&j!({ "success": true })))
}
