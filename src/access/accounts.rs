//! People who log in: passwords (Argon2id), access tokens (JWT, HS256), refresh tokens (opaque,
//! stored hashed, rotated on every use), and the login throttle.
//!
//! An access token is `header.claims.signature` (RFC 7519) signed with HMAC-SHA256 under the
//! key of `accounts.jwt_secret`, or a key generated once into `<data_dir>/jwt.key`. Only `HS256`
//! is accepted (never `none`, never another algorithm), with `iss` and `aud` = `refract`, an
//! unexpired `exp`, and a live session (`sid`): logging out revokes the session, so its access
//! tokens stop working at once. Rotating the key (a new `jwt_secret`) ends every access token;
//! refresh tokens go on.
//!
//! Invariants: no password, token or key reaches a log line; an unknown email and a wrong
//! password take the same time and get the same answer.

use super::auth::{Principal, RateOverride, Scope};
use crate::store::{Refresh, Store, StoreError, UserRecord};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq;

/// The `[accounts]` config section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    /// The first admin, created at start when no user has this email (env
    /// `REFRACT_ADMIN_EMAIL`); needs `admin_password`.
    pub admin_email: Option<String>,
    /// Its password (env `REFRACT_ADMIN_PASSWORD`), at least 12 characters.
    pub admin_password: Option<crate::util::secret::Secret>,
    /// The key access tokens are signed with (at least 32 characters); unset = a random key
    /// generated once into `<data_dir>/jwt.key`.
    pub jwt_secret: Option<crate::util::secret::Secret>,
    /// Lifetime of an access token, seconds.
    pub access_ttl_secs: u64,
    /// Lifetime of a session (its refresh tokens), days.
    pub session_days: u64,
    /// Failed logins (per account, and per client IP) before the throttle starts: then each
    /// further failure doubles the wait, from 1 s up to 15 min.
    pub free_failures: u32,
    /// `open`: `POST /api/v1/auth/register` creates a new tenant with its first member (who can
    /// then create the tenant's API keys); `closed` (the default): only admins add people.
    pub registration: Registration,
}

/// Who may create an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    #[default]
    Closed,
    Open,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            admin_email: None,
            admin_password: None,
            jwt_secret: None,
            access_ttl_secs: 900,
            session_days: 30,
            free_failures: 5,
            registration: Registration::Closed,
        }
    }
}

impl AccountsConfig {
    pub fn validate(&self) -> Result<(), String> {
        match (&self.admin_email, &self.admin_password) {
            (Some(e), Some(p)) => {
                valid_email(e)
                    .ok_or("accounts.admin_email (REFRACT_ADMIN_EMAIL) is not an email")?;
                valid_password(&p.0).map_err(|m| format!("accounts.admin_password: {m}"))?;
            }
            (None, None) => {}
            _ => {
                return Err(
                    "accounts.admin_email and accounts.admin_password (REFRACT_ADMIN_EMAIL, \
                     REFRACT_ADMIN_PASSWORD) go together"
                        .into(),
                )
            }
        }
        if self.jwt_secret.as_ref().is_some_and(|s| s.0.len() < 32) {
            return Err("accounts.jwt_secret must be at least 32 characters".into());
        }
        if !(60..=86_400).contains(&self.access_ttl_secs) {
            return Err("accounts.access_ttl_secs must be 60-86400".into());
        }
        if !(1..=365).contains(&self.session_days) {
            return Err("accounts.session_days must be 1-365".into());
        }
        Ok(())
    }
}

/// An email as stored (trimmed, lower-cased), if it looks like one.
pub fn valid_email(e: &str) -> Option<String> {
    let e = e.trim().to_ascii_lowercase();
    let (local, domain) = e.split_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then_some(e)
}

/// A password we accept: 12-1024 characters.
pub fn valid_password(p: &str) -> Result<(), &'static str> {
    match p.chars().count() {
        0..=11 => Err("a password is at least 12 characters"),
        1025.. => Err("a password is at most 1024 characters"),
        _ => Ok(()),
    }
}

/// Argon2id (the crate's defaults: m=19 MiB, t=2, p=1) as a PHC string.
pub fn hash_password(p: &str) -> Result<String, String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("random: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(p.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `p` matches the PHC string `hash` (false for a malformed hash).
pub fn verify_password(p: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(p.as_bytes(), &h)
            .is_ok()
    })
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: String,
    /// The session (refresh-token family).
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
}

const ISSUER: &str = "refract";

/// Sign claims as an HS256 JWT.
pub fn sign_jwt(key: &[u8], c: &Claims) -> Result<String, String> {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(c).map_err(|e| e.to_string())?);
    let signing = format!("{header}.{claims}");
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|e| e.to_string())?;
    mac.update(signing.as_bytes());
    Ok(format!(
        "{signing}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    ))
}

/// The claims of a valid token at `now` (unix seconds): HS256 only, signature compared in
/// constant time, issuer, audience and expiry checked.
pub fn verify_jwt(key: &[u8], token: &str, now: i64) -> Option<Claims> {
    let mut parts = token.split('.');
    let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    #[derive(Deserialize)]
    struct Header {
        alg: String,
    }
    let header: Header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    if header.alg != "HS256" {
        return None;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(h.as_bytes());
    mac.update(b".");
    mac.update(c.as_bytes());
    let expected = mac.finalize().into_bytes();
    let given = URL_SAFE_NO_PAD.decode(s).ok()?;
    if !bool::from(given.as_slice().ct_eq(expected.as_slice())) {
        return None;
    }
    let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
    (claims.iss == ISSUER && claims.aud == ISSUER && claims.exp > now).then_some(claims)
}

/// Whether a presented credential is a JWT rather than an API key.
pub fn looks_like_jwt(t: &str) -> bool {
    t.starts_with("eyJ") && t.matches('.').count() == 2
}

/// Failures, per account and per client: (count, wait until, last failure). A count is
/// forgotten after a quiet `QUIET_MS`.
#[derive(Default)]
struct Throttle {
    by: HashMap<String, (u32, i64, i64)>,
}

/// A quarter of an hour without failures forgives the earlier ones.
const QUIET_MS: i64 = 15 * 60 * 1000;

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginError {
    /// Unknown email, wrong password or disabled user: one answer for all three.
    Invalid,
    /// Too many failures: wait this many seconds.
    Throttled(u64),
    /// Every password check slot is taken (a burst of logins): try again shortly.
    Busy,
    Store(StoreError),
    Internal(String),
}

impl From<StoreError> for LoginError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// A logged-in session: tokens to hand to the client (never debug-printed).
#[derive(Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub expires_in: u64,
    pub user: UserRecord,
    pub session: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("user", &self.user)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// Accounts: login, refresh, logout, and who a JWT is.
pub struct Accounts {
    store: Arc<Store>,
    key: Vec<u8>,
    access_ttl: i64,
    session_ms: i64,
    free_failures: u32,
    throttle: Mutex<Throttle>,
    /// Argon2id runs at most this many at once (19 MiB each); a burst waits, then gets 503.
    hashing: tokio::sync::Semaphore,
    /// Verified against when the email is unknown, so both cases cost one Argon2id.
    dummy_hash: String,
}

impl Accounts {
    /// How long a session lasts without activity, in seconds (the refresh cookie's life).
    pub fn session_secs(&self) -> i64 {
        self.session_ms / 1000
    }

    /// `key`: the JWT signing key (from config, or the data folder's `jwt.key`).
    pub fn new(cfg: &AccountsConfig, key: Vec<u8>, store: Arc<Store>) -> Result<Self, String> {
        Ok(Self {
            store,
            key,
            access_ttl: i64::try_from(cfg.access_ttl_secs).unwrap_or(900),
            session_ms: i64::try_from(cfg.session_days).unwrap_or(30) * 86_400_000,
            free_failures: cfg.free_failures,
            throttle: Mutex::new(Throttle::default()),
            hashing: tokio::sync::Semaphore::new(2 * num_cpus::get().max(1)),
            dummy_hash: hash_password("not a real password, only for timing")?,
        })
    }

    /// Create the configured first admin unless a user has its email.
    pub async fn bootstrap(&self, cfg: &AccountsConfig) -> Result<(), String> {
        let (Some(email), Some(password)) = (&cfg.admin_email, &cfg.admin_password) else {
            return Ok(());
        };
        let email = valid_email(email).ok_or("accounts.admin_email is not an email")?;
        if self
            .store
            .user_by_email(&email)
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            return Ok(());
        }
        let now = crate::util::clock::now_ms();
        self.store
            .insert_user(&UserRecord {
                id: new_token(9)?,
                email,
                name: "Administrator".into(),
                password_hash: hash_password(&password.0)?,
                role: "admin".into(),
                tenant: "default".into(),
                scopes: vec!["read".into(), "write".into(), "admin".into()],
                disabled: false,
                created_at: now,
                updated_at: now,
            })
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!("first admin account created from accounts.admin_email");
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Throttle> {
        self.throttle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Seconds to wait before `keys` may try again, if any.
    fn throttled(&self, keys: &[String], now: i64) -> Option<u64> {
        let t = self.lock();
        keys.iter()
            .filter_map(|k| t.by.get(k))
            .map(|(_, until, _)| *until - now)
            .filter(|ms| *ms > 0)
            .max()
            .map(|ms| u64::try_from((ms + 999) / 1000).unwrap_or(1))
    }

    /// Count a failure for each key (before the password is checked, so that parallel guesses
    /// are counted as they arrive; a success takes it back).
    fn failed(&self, keys: &[String], now: i64) {
        let mut t = self.lock();
        if t.by.len() > 100_000 {
            t.by.retain(|_, (_, until, last)| *until > now || now - *last < QUIET_MS);
        }
        for k in keys {
            let e = t.by.entry(k.clone()).or_insert((0, 0, now));
            if now - e.2 > QUIET_MS {
                e.0 = 0;
            }
            e.0 += 1;
            e.2 = now;
            let over = e.0.saturating_sub(self.free_failures);
            if over > 0 {
                let wait = 1000i64 << (over - 1).min(20);
                e.1 = now + wait.min(900_000);
            }
        }
    }

    /// Take back the failure counted for a login that succeeded: the account's count is
    /// cleared, the client's reduced by one.
    fn succeeded(&self, account: &str, client: &str) {
        let mut t = self.lock();
        t.by.remove(account);
        if let Some(e) = t.by.get_mut(client) {
            e.0 = e.0.saturating_sub(1);
            if e.0 <= self.free_failures {
                e.1 = 0;
            }
        }
    }

    /// Check a password on the blocking pool, at most `hashing` at once.
    pub async fn check_password(&self, password: &str, hash: &str) -> Result<bool, LoginError> {
        let _slot = tokio::time::timeout(std::time::Duration::from_secs(5), self.hashing.acquire())
            .await
            .map_err(|_| LoginError::Busy)?
            .map_err(|_| LoginError::Busy)?;
        let (pw, hash) = (password.to_string(), hash.to_string());
        Ok(
            tokio::task::spawn_blocking(move || verify_password(&pw, &hash))
                .await
                .unwrap_or(false),
        )
    }

    /// Hash a new password on the blocking pool, at most `hashing` at once.
    pub async fn new_hash(&self, password: &str) -> Result<String, LoginError> {
        let _slot = tokio::time::timeout(std::time::Duration::from_secs(5), self.hashing.acquire())
            .await
            .map_err(|_| LoginError::Busy)?
            .map_err(|_| LoginError::Busy)?;
        let pw = password.to_string();
        tokio::task::spawn_blocking(move || hash_password(&pw))
            .await
            .map_err(|e| LoginError::Internal(e.to_string()))?
            .map_err(LoginError::Internal)
    }

    /// A logged-in user's password check (changing it): throttled like a login.
    pub async fn check_own_password(
        &self,
        user: &UserRecord,
        password: &str,
        ip: IpAddr,
    ) -> Result<bool, LoginError> {
        let now = crate::util::clock::now_ms();
        let keys = [format!("user:{}", user.email), client_key(ip)];
        if let Some(wait) = self.throttled(&keys, now) {
            return Err(LoginError::Throttled(wait));
        }
        self.failed(&keys, now);
        let ok = self.check_password(password, &user.password_hash).await?;
        if ok {
            self.succeeded(&keys[0], &keys[1]);
        }
        Ok(ok)
    }

    /// Check an email and password; open a session. The client IP is throttled with the account.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        ip: IpAddr,
    ) -> Result<Tokens, LoginError> {
        let now = crate::util::clock::now_ms();
        let email = valid_email(email).unwrap_or_default();
        let keys = [format!("user:{email}"), client_key(ip)];
        if let Some(wait) = self.throttled(&keys, now) {
            return Err(LoginError::Throttled(wait));
        }
        self.failed(&keys, now);
        let user = self.store.user_by_email(&email).await?;
        let hash = user
            .as_ref()
            .map_or(self.dummy_hash.clone(), |u| u.password_hash.clone());
        let ok = self.check_password(password, &hash).await?;
        let Some(user) = user.filter(|u| ok && !u.disabled) else {
            return Err(LoginError::Invalid);
        };
        self.succeeded(&keys[0], &keys[1]);
        let family = format!("ses_{}", new_token(12).map_err(LoginError::Internal)?);
        let refresh = format!("rft_{}", new_token(32).map_err(LoginError::Internal)?);
        self.store
            .open_session(
                &family,
                &user.id,
                &super::auth::hash(&refresh),
                now + self.session_ms,
                now,
            )
            .await?;
        self.tokens(user, family, refresh, now)
    }

    fn tokens(
        &self,
        user: UserRecord,
        family: String,
        refresh: String,
        now: i64,
    ) -> Result<Tokens, LoginError> {
        let claims = Claims {
            iss: ISSUER.into(),
            aud: ISSUER.into(),
            sub: user.id.clone(),
            sid: family.clone(),
            iat: now / 1000,
            exp: now / 1000 + self.access_ttl,
        };
        Ok(Tokens {
            access: sign_jwt(&self.key, &claims).map_err(LoginError::Internal)?,
            refresh,
            expires_in: u64::try_from(self.access_ttl).unwrap_or(900),
            user,
            session: family,
        })
    }

    /// Rotate a refresh token. A token used twice revokes its session.
    pub async fn refresh(&self, token: &str) -> Result<Tokens, LoginError> {
        let now = crate::util::clock::now_ms();
        let next = format!("rft_{}", new_token(32).map_err(LoginError::Internal)?);
        match self
            .store
            .refresh_session(&super::auth::hash(token), &super::auth::hash(&next), now)
            .await?
        {
            Refresh::Rotated { family, user: id } => {
                let user = self.store.user(&id).await?.filter(|u| !u.disabled);
                let Some(user) = user else {
                    self.store.revoke_session(&family, &id, now).await?;
                    return Err(LoginError::Invalid);
                };
                self.tokens(user, family, next, now)
            }
            Refresh::Reused => {
                tracing::warn!(
                    "a rotated refresh token was presented again: its session is revoked"
                );
                Err(LoginError::Invalid)
            }
            Refresh::Invalid => Err(LoginError::Invalid),
        }
    }

    /// Open registration: a new tenant and its first member (every scope of that tenant),
    /// unless the email is taken, in which case nothing happens. Either way the same work is
    /// done (a hash) and the same answer given, so registering reveals no account.
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        name: &str,
    ) -> Result<(), LoginError> {
        let hash = self.new_hash(password).await?;
        let mut t = [0u8; 6];
        getrandom::fill(&mut t).map_err(|e| LoginError::Internal(format!("random: {e}")))?;
        let tenant: String = std::iter::once("t".to_string())
            .chain(t.iter().map(|b| format!("{b:02x}")))
            .collect();
        let now = crate::util::clock::now_ms();
        let user = UserRecord {
            id: new_token(9).map_err(LoginError::Internal)?,
            email: email.to_string(),
            name: name.to_string(),
            password_hash: hash,
            role: "member".into(),
            tenant,
            scopes: vec!["read".into(), "write".into(), "admin".into()],
            disabled: false,
            created_at: now,
            updated_at: now,
        };
        match self.store.insert_user(&user).await {
            Ok(()) | Err(StoreError::Unique(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// End the session of a refresh token (logout without a live access token).
    pub async fn end_session(&self, refresh: &str) -> Result<bool, StoreError> {
        self.store
            .revoke_by_token(&super::auth::hash(refresh), crate::util::clock::now_ms())
            .await
    }

    /// Who an access token is: the user's principal, when the token is valid, its session live
    /// and the user enabled. `(principal, user, session)`.
    pub async fn identify(
        &self,
        token: &str,
    ) -> Result<Option<(Principal, UserRecord, String)>, StoreError> {
        let now = crate::util::clock::now_ms();
        let Some(c) = verify_jwt(&self.key, token, now / 1000) else {
            return Ok(None);
        };
        if !self.store.session_live(&c.sid, now).await? {
            return Ok(None);
        }
        let Some(u) = self.store.user(&c.sub).await?.filter(|u| !u.disabled) else {
            return Ok(None);
        };
        Ok(Some((principal(&u), u, c.sid)))
    }
}

/// A new user (`refract user create`): checked, hashed, inserted. Its id.
pub async fn create_user(
    store: &Store,
    email: &str,
    password: &str,
    role: &str,
    tenant: &str,
    scopes: &[String],
    name: &str,
) -> Result<String, String> {
    let email = valid_email(email).ok_or("not an email")?;
    valid_password(password)?;
    if !matches!(role, "admin" | "member") {
        return Err("a role is admin or member".into());
    }
    if !super::auth::valid_tenant(tenant) {
        return Err("a tenant is 1-64 of a-z, 0-9, '-', '_'".into());
    }
    if let Some(bad) = scopes.iter().find(|s| Scope::parse(s).is_none()) {
        return Err(format!("unknown scope {bad:?} (read, write, admin)"));
    }
    if role == "member" && tenant == "default" && scopes.iter().any(|s| s == "admin") {
        // The admins of tenant `default` administer every tenant: that is role `admin`.
        return Err(
            "a member of tenant default cannot have the admin scope; use --role admin".into(),
        );
    }
    let now = crate::util::clock::now_ms();
    let id = new_token(9)?;
    store
        .insert_user(&UserRecord {
            id: id.clone(),
            email,
            name: name.to_string(),
            password_hash: hash_password(password)?,
            role: role.to_string(),
            tenant: tenant.to_string(),
            scopes: scopes.to_vec(),
            disabled: false,
            created_at: now,
            updated_at: now,
        })
        .await
        .map_err(|e| match e {
            StoreError::Unique(_) => "a user with this email exists".to_string(),
            other => other.to_string(),
        })?;
    Ok(id)
}

/// A user's principal: an admin holds every scope of tenant `default` (which administers every
/// tenant, as its keys do); a member holds its scopes in its tenant.
pub fn principal(u: &UserRecord) -> Principal {
    let scopes = if u.role == "admin" {
        vec![Scope::Read, Scope::Write, Scope::Admin]
    } else {
        u.scopes.iter().filter_map(|s| Scope::parse(s)).collect()
    };
    Principal {
        key_id: format!("user:{}", u.id),
        tenant: if u.role == "admin" {
            "default".into()
        } else {
            u.tenant.clone()
        },
        scopes,
        rate: RateOverride::default(),
    }
}

/// The JWT signing key: `accounts.jwt_secret`, else `<data_dir>/jwt.key`, created once (32
/// random bytes, hex; mode 0600, written to a temp name and renamed).
pub fn signing_key(cfg: &AccountsConfig, data_dir: &std::path::Path) -> Result<Vec<u8>, String> {
    if let Some(s) = &cfg.jwt_secret {
        return Ok(s.0.as_bytes().to_vec());
    }
    let path = data_dir.join("jwt.key");
    match std::fs::read_to_string(&path) {
        Ok(hex) if hex.trim().len() >= 64 => return Ok(hex.trim().as_bytes().to_vec()),
        Ok(_) => {
            return Err(format!(
                "{}: too short; delete it to generate a new key",
                path.display()
            ))
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!("{}: {e}", path.display()))
        }
        Err(_) => {}
    }
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| format!("random: {e}"))?;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let tmp = data_dir.join(".jwt.key.tmp");
    let _ = std::fs::remove_file(&tmp);
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        f.write_all(hex.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
    }
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    // Read back: when two servers started at once, the file that won is the key of both.
    let kept = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(kept.trim().as_bytes().to_vec())
}

/// The throttle's key for a client: its IPv4 address, or its IPv6 /64 (one host holds a
/// whole /64).
fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// A random URL-safe token of `n` bytes.
pub fn new_token(n: usize) -> Result<String, String> {
    crate::util::ids::random_id(n).map_err(|e| format!("random: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            iss: "refract".into(),
            aud: "refract".into(),
            sub: "u1".into(),
            sid: "s1".into(),
            iat: 0,
            exp,
        }
    }

    #[test]
    fn jwts_verify_only_when_untouched_and_hs256() {
        let key = b"0123456789abcdef0123456789abcdef";
        let t = sign_jwt(key, &claims(2000)).unwrap();
        assert!(looks_like_jwt(&t));
        assert_eq!(verify_jwt(key, &t, 1000), Some(claims(2000)));
        assert_eq!(verify_jwt(key, &t, 2000), None, "expired");
        assert_eq!(
            verify_jwt(b"another key, also 32 bytes long!", &t, 1000),
            None
        );
        // alg none, with or without a signature.
        let none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = t.split('.').nth(1).unwrap();
        assert_eq!(verify_jwt(key, &format!("{none}.{body}."), 1000), None);
        let sig = t.split('.').nth(2).unwrap();
        assert_eq!(verify_jwt(key, &format!("{none}.{body}.{sig}"), 1000), None);
        // Another audience, correctly signed.
        let mut c = claims(2000);
        c.aud = "elsewhere".into();
        assert_eq!(verify_jwt(key, &sign_jwt(key, &c).unwrap(), 1000), None);
        // Tampered claims.
        let mut c = claims(2000);
        c.sub = "admin".into();
        let forged = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap());
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(
            verify_jwt(key, &format!("{}.{forged}.{}", parts[0], parts[2]), 1000),
            None
        );
        assert_eq!(verify_jwt(key, "a.b", 1000), None);
        assert!(!looks_like_jwt("rfk_abc"));
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let k = |s: &str| client_key(s.parse().unwrap());
        assert_eq!(k("2001:db8:1:2:3:4:5:6"), k("2001:db8:1:2:ffff::1"));
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"));
        assert_eq!(k("192.0.2.7"), "ip:192.0.2.7");
    }

    #[test]
    fn passwords_hash_with_argon2id() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterY", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(valid_password("short").is_err());
        assert_eq!(
            valid_email(" Ann@Example.COM "),
            Some("ann@example.com".into())
        );
        assert_eq!(valid_email("nope"), None);
    }
}
