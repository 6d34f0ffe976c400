//! GitHub App authentication: RS256 JWTs for the App itself, the installation of each
//! owner, and installation tokens cached until shortly before they expire.
//!
//! One App may be installed on many organizations. Each installation has its own token;
//! requests are routed to the right one by the owner in their path (`/repos/{owner}/...`,
//! `/orgs/{org}/...`). Tokens are minted on first use, shared by every request for that
//! installation, and minted again when little of their life is left (a fifth of it, at
//! most five minutes), so a long run never sends an expired token. Should GitHub still
//! answer 401 (clocks disagree), the client drops the token and retries once.

mod installations;
mod jwt;

use futures::future::BoxFuture;
use reqwest::header::HeaderValue;
use reqwest::Method;

use super::error::{ErrorKind, GitHubError};
use super::transport::{Authorizer, Transport};
use crate::model::Installation;
use installations::{local_error, Installations, Lookup, Principal};
use jwt::JwtSigner;

/// The error wording lives with the errors; kept here for callers of the old path.
pub use super::error::{explain, permissions_for};
pub use super::identity::{AuthIdentity, Authorization};
pub(crate) use installations::AS_INSTALLATION;
pub use installations::{refresh_margin, MAX_REFRESH_MARGIN};
pub use jwt::{AppConfig, AppKey, AppKeyError, JWT_BACKDATE, JWT_LIFETIME};

/// GitHub App credentials and the installations and tokens learnt with them.
pub struct AppAuth {
    jwt: JwtSigner,
    installations: Installations,
}

impl std::fmt::Debug for AppAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppAuth")
            .field("issuer", &self.jwt.issuer())
            .finish_non_exhaustive()
    }
}

impl AppAuth {
    /// Reads and checks the App's key.
    pub fn new(config: &AppConfig) -> Result<Self, AppKeyError> {
        Ok(AppAuth {
            jwt: JwtSigner::new(config)?,
            installations: Installations::default(),
        })
    }

    /// The JWT's `iss` as configured.
    pub fn issuer(&self) -> &str {
        self.jwt.issuer()
    }

    /// How many installation tokens this process has minted.
    pub fn tokens_minted(&self) -> u64 {
        self.installations.tokens_minted()
    }

    /// A JWT for the App endpoints, reused until a minute before it expires.
    pub fn jwt_header(&self) -> Result<HeaderValue, String> {
        self.jwt.jwt_header()
    }

    /// The header and identity for a request to `path`, minting what is missing.
    async fn authorization(
        &self,
        transport: &Transport,
        method: &Method,
        path: &str,
    ) -> Result<Authorization, GitHubError> {
        let id = match Principal::for_path(path) {
            Principal::App => {
                let header = self
                    .jwt
                    .jwt_header()
                    .map_err(|m| local_error(method.clone(), path, ErrorKind::InvalidInput, m))?;
                return Ok(Authorization {
                    header: Some(header),
                    identity: AuthIdentity::App,
                    valid_until: None,
                });
            }
            Principal::Installation(id) => id,
            Principal::Owner { owner, repo } => {
                match self
                    .installations
                    .installation(transport, self.jwt.issuer(), &owner, repo.as_deref())
                    .await?
                {
                    Lookup::Found(i) => i.id,
                    Lookup::Missing(why) => {
                        return Err(local_error(method.clone(), path, ErrorKind::NotFound, why))
                    }
                }
            }
        };
        let (header, valid_until) = self
            .installations
            .installation_header(transport, id)
            .await?;
        Ok(Authorization {
            header: Some(header),
            identity: AuthIdentity::Installation(id),
            valid_until: Some(valid_until),
        })
    }

    /// The identity a request to `path` is sent as, finding the installation if needed.
    async fn identity_of(
        &self,
        transport: &Transport,
        path: &str,
    ) -> Result<AuthIdentity, GitHubError> {
        Ok(match Principal::for_path(path) {
            Principal::App => AuthIdentity::App,
            Principal::Installation(id) => AuthIdentity::Installation(id),
            Principal::Owner { owner, repo } => {
                match self
                    .installations
                    .installation(transport, self.jwt.issuer(), &owner, repo.as_deref())
                    .await?
                {
                    Lookup::Found(i) => AuthIdentity::Installation(i.id),
                    Lookup::Missing(_) => AuthIdentity::App,
                }
            }
        })
    }

    /// Forgets the installation looked up for `owner` (a webhook said it changed).
    pub(crate) fn forget_installation(&self, owner: &str) {
        self.installations.forget_owner(owner);
    }

    /// The installation of `owner`, or `None` when the App is not installed there.
    /// `repo_hint`: a repository of `owner`, asked about when `owner` is no organization.
    pub(crate) async fn installation_for(
        &self,
        transport: &Transport,
        owner: &str,
        repo_hint: Option<&str>,
    ) -> Result<Option<Installation>, GitHubError> {
        Ok(
            match self
                .installations
                .installation(transport, self.jwt.issuer(), owner, repo_hint)
                .await?
            {
                Lookup::Found(i) => Some(i),
                Lookup::Missing(_) => None,
            },
        )
    }
}

impl Authorizer for AppAuth {
    fn authorize<'a>(
        &'a self,
        transport: &'a Transport,
        method: &'a Method,
        path: &'a str,
    ) -> BoxFuture<'a, Result<Authorization, GitHubError>> {
        Box::pin(self.authorization(transport, method, path))
    }

    fn identity<'a>(
        &'a self,
        transport: &'a Transport,
        path: &'a str,
    ) -> BoxFuture<'a, Result<AuthIdentity, GitHubError>> {
        Box::pin(self.identity_of(transport, path))
    }

    fn invalidate(&self, path: &str) -> bool {
        self.installations.forget_token(path)
    }

    fn budget_identity(&self) -> AuthIdentity {
        AuthIdentity::App
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use jsonwebtoken::Algorithm;
    use secrecy::SecretString;

    #[test]
    fn the_jwt_is_rs256_backdated_a_minute_and_expires_within_ten_minutes() {
        let pair = github_emulator::AppKeyPair::generate();
        let auth = AppAuth::new(&AppConfig {
            issuer: "12345".into(),
            key: AppKey::Pem(pair.private_pem.clone()),
        })
        .expect("a PKCS#8 key");
        let before = Utc::now().timestamp();
        let header = auth.jwt_header().expect("signs");
        assert!(header.is_sensitive());
        let jwt = header
            .to_str()
            .expect("ASCII")
            .trim_start_matches("Bearer ")
            .to_string();
        let key =
            jsonwebtoken::DecodingKey::from_rsa_pem(pair.public_pem.as_bytes()).expect("SPKI");
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.required_spec_claims = Default::default();
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<serde_json::Value>(&jwt, &key, &validation)
            .expect("signed with the App's key");
        let (iat, exp) = (
            data.claims["iat"].as_i64().unwrap(),
            data.claims["exp"].as_i64().unwrap(),
        );
        assert!(
            (before - 61..=before - 59).contains(&iat),
            "iat {iat}, now {before}"
        );
        assert!(
            exp > before && exp <= before + 600,
            "exp {exp}, now {before}"
        );
        assert_eq!(
            data.claims["iss"],
            serde_json::json!(12345),
            "a numeric app id is a number"
        );
        // Reused while young.
        assert_eq!(
            auth.jwt_header().expect("signs").to_str().unwrap(),
            header.to_str().unwrap()
        );
    }

    #[test]
    fn a_key_that_is_not_pem_is_refused_without_echoing_it() {
        let err = AppAuth::new(&AppConfig {
            issuer: "Iv1.abc".into(),
            key: AppKey::Pem(SecretString::from("not-a-key-hunter2")),
        })
        .expect_err("refused");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = AppAuth::new(&AppConfig {
            issuer: " ".into(),
            key: AppKey::Pem(SecretString::from("x")),
        })
        .expect_err("refused");
        assert!(matches!(err, AppKeyError::NoIssuer));
    }
}
