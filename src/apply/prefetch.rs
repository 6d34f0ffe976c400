//! Public keys fetched ahead: while a first listing's later pages are still arriving,
//! `observe` starts the key fetches for the targets the pages already named, so the
//! requests in flight stay full instead of waiting for the whole listing, the plan and then
//! apply's key step. Apply takes each key from here before asking GitHub itself.
//!
//! Only what apply would fetch anyway is fetched ahead: repository targets the ledger holds
//! no key for, of policies that will push. `rotor plan` fetches nothing ahead.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::task::JoinHandle;

use crate::github::{Client, GitHubError};
use crate::model::{PublicKey, SecretScope};

type Fetch = JoinHandle<Result<PublicKey, GitHubError>>;

/// Key fetches started ahead of apply, by scope. One per pass; dropping it lets fetches
/// still running finish on their own (their answers are then unused).
#[derive(Default)]
pub struct KeyPrefetch {
    started: Mutex<HashMap<SecretScope, Fetch>>,
}

impl KeyPrefetch {
    pub fn new() -> KeyPrefetch {
        KeyPrefetch::default()
    }

    /// Starts fetching `scope`'s public key unless a fetch for it was started already.
    /// The GitHub client's governor bounds these requests like every other.
    pub fn start(&self, github: &Client, scope: SecretScope) {
        let mut started = self.started.lock().unwrap_or_else(|p| p.into_inner());
        if started.contains_key(&scope) {
            return;
        }
        let github = github.clone();
        let key_scope = scope.clone();
        let fetch = tokio::spawn(async move { github.public_key(&key_scope).await });
        started.insert(scope, fetch);
    }

    /// The answer of the fetch started for `scope`, waiting for it; `None` when none was
    /// started (or its task did not finish). Each answer is taken once.
    pub async fn take(&self, scope: &SecretScope) -> Option<Result<PublicKey, GitHubError>> {
        let fetch = self
            .started
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(scope)?;
        fetch.await.ok()
    }

    /// How many fetches were started and not yet taken.
    pub fn pending(&self) -> usize {
        self.started.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl std::fmt::Debug for KeyPrefetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPrefetch")
            .field("pending", &self.pending())
            .finish()
    }
}
