//! The App's own credential: its private key, and the RS256 JWTs signed with it for the App
//! endpoints (finding installations, minting their tokens).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

/// How rotor identifies itself as a GitHub App: `GITHUB_APP_ID` (or `GITHUB_APP_CLIENT_ID`)
/// and `GITHUB_APP_PRIVATE_KEY_FILE`.
pub struct AppConfig {
    /// The JWT's `iss`: the App's client id (GitHub recommends it) or its numeric app id.
    pub issuer: String,
    pub key: AppKey,
}

/// Where the App's private key (PEM, PKCS#1 as GitHub hands it out, or PKCS#8) is.
pub enum AppKey {
    File(PathBuf),
    Pem(SecretString),
}

impl std::fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = match &self.key {
            AppKey::File(p) => format!("file {}", p.display()),
            AppKey::Pem(_) => "<redacted PEM>".to_string(),
        };
        f.debug_struct("AppConfig")
            .field("issuer", &self.issuer)
            .field("key", &key)
            .finish()
    }
}

/// The App's key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AppKeyError {
    #[error("cannot read the GitHub App private key {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the GitHub App private key{} is not an RSA private key in PEM form: {reason}", .path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Invalid {
        path: Option<PathBuf>,
        reason: String,
    },
    #[error("the GitHub App id is empty")]
    NoIssuer,
}

/// The JWT's lifetime: GitHub refuses an `exp` more than 10 minutes ahead; 9 leaves margin.
pub const JWT_LIFETIME: Duration = Duration::from_secs(9 * 60);
/// How far `iat` is set in the past, against clock drift (GitHub's advice: 60 s).
pub const JWT_BACKDATE: Duration = Duration::from_secs(60);

#[derive(Serialize)]
struct Claims<'a> {
    iat: i64,
    exp: i64,
    iss: Issuer<'a>,
}

/// A numeric app id is sent as a JSON number, a client id as a string.
#[derive(Serialize)]
#[serde(untagged)]
enum Issuer<'a> {
    Id(u64),
    ClientId(&'a str),
}

pub(super) fn sensitive_bearer(token: &str) -> Result<HeaderValue, ()> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| ())?;
    v.set_sensitive(true);
    Ok(v)
}

/// The App's issuer and key, and the JWT last signed with them.
pub(super) struct JwtSigner {
    issuer: String,
    key: EncodingKey,
    jwt: Mutex<Option<(HeaderValue, i64)>>,
}

impl JwtSigner {
    /// Reads and checks the App's key.
    pub(super) fn new(config: &AppConfig) -> Result<Self, AppKeyError> {
        let issuer = config.issuer.trim().to_string();
        if issuer.is_empty() {
            return Err(AppKeyError::NoIssuer);
        }
        let (pem, path) = match &config.key {
            AppKey::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| AppKeyError::Read {
                    path: path.clone(),
                    source,
                })?;
                (SecretString::from(text), Some(path.clone()))
            }
            AppKey::Pem(pem) => (pem.clone(), None),
        };
        let key = EncodingKey::from_rsa_pem(pem.expose_secret().as_bytes()).map_err(|e| {
            AppKeyError::Invalid {
                path: path.clone(),
                reason: e.to_string(),
            }
        })?;
        let signer = JwtSigner {
            issuer,
            key,
            jwt: Mutex::new(None),
        };
        // Sign once now, so a key that cannot sign fails at start rather than mid-run.
        signer
            .sign_jwt(Utc::now().timestamp())
            .map_err(|reason| AppKeyError::Invalid { path, reason })?;
        Ok(signer)
    }

    /// The JWT's `iss` as configured.
    pub(super) fn issuer(&self) -> &str {
        &self.issuer
    }

    fn sign_jwt(&self, now: i64) -> Result<(HeaderValue, i64), String> {
        let iat = now - JWT_BACKDATE.as_secs() as i64;
        let exp = now + JWT_LIFETIME.as_secs() as i64;
        let iss = match self.issuer.parse::<u64>() {
            Ok(id) => Issuer::Id(id),
            Err(_) => Issuer::ClientId(&self.issuer),
        };
        let jwt = jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &Claims { iat, exp, iss },
            &self.key,
        )
        .map_err(|e| e.to_string())?;
        let header =
            sensitive_bearer(&jwt).map_err(|_| "the JWT is not a header value".to_string())?;
        Ok((header, exp))
    }

    /// A JWT for the App endpoints, reused until a minute before it expires.
    pub(super) fn jwt_header(&self) -> Result<HeaderValue, String> {
        let now = Utc::now().timestamp();
        let mut cached = self.jwt.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((header, exp)) = cached.as_ref() {
            if now < exp - 60 {
                return Ok(header.clone());
            }
        }
        let (header, exp) = self.sign_jwt(now)?;
        *cached = Some((header.clone(), exp));
        Ok(header)
    }
}
