//! Keeps the Vault token alive while the daemon runs: renews it before it expires, logs in
//! again with AppRole when it can no longer be renewed, and reports Vault being away
//! without ever stopping the daemon.

use std::sync::Arc;
use std::time::Duration;

use super::shared::Shared;
use crate::source::TokenAction;

/// Longest wait between checks while Vault does not answer.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// Runs until the daemon stops. Without Vault there is nothing to do.
pub async fn keep_token(shared: Arc<Shared>) {
    let Some(vault) = shared.ctx.sources.vault() else {
        return;
    };
    let mut failures: u32 = 0;
    loop {
        let step = tokio::select! {
            _ = shared.ctx.stop.cancelled() => return,
            r = vault.refresh_token() => r,
        };
        let wait = match step {
            Ok(state) => {
                failures = 0;
                let mut status = shared.status();
                status.vault_token_ttl = state.ttl;
                status.set_vault_up(true, None);
                if state.action == TokenAction::CannotRenew {
                    tracing::warn!(
                        ttl_secs = state.ttl.map(|t| t.as_secs()),
                        "the Vault token cannot be renewed and there are no AppRole credentials: Vault requests fail once it expires"
                    );
                }
                state.check_again_in
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                shared.status().set_vault_up(false, Some(&e.to_string()));
                tracing::warn!(error = %e, "checking the Vault token failed; trying again");
                Duration::from_secs(1u64 << failures.min(5)).min(MAX_WAIT)
            }
        };
        tokio::select! {
            _ = shared.ctx.stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
