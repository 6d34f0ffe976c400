//! Settings for commands that reach GitHub and Vault, from the environment
//! (`GITHUB_API_URL`, `GITHUB_TOKEN`/`GH_TOKEN` or `GITHUB_APP_ID` with
//! `GITHUB_APP_PRIVATE_KEY_FILE`, `VAULT_ADDR`, `VAULT_TOKEN`, ...).

use rotor::github::{Client, GitHubConfig};
use rotor::source::{Sources, VaultConfig};

/// Builds the GitHub client and the sources from the environment, with the GitHub settings
/// adjusted by `tune` (flags) before the client is built.
pub fn connect_tuned(tune: impl FnOnce(&mut GitHubConfig)) -> Result<(Client, Sources), String> {
    let mut config = GitHubConfig::from_env().map_err(|e| format!("GitHub settings: {e}"))?;
    tune(&mut config);
    if config.token.is_none() && config.app.is_none() {
        return Err("neither GITHUB_TOKEN (or GH_TOKEN) nor GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY_FILE is set: rotor needs credentials to reach GitHub".into());
    }
    if config.app.is_some() && config.token.is_some() {
        tracing::info!("GitHub App settings are present: using the App's installation tokens, not GITHUB_TOKEN");
    }
    let github = Client::new(config).map_err(|e| format!("GitHub client: {e}"))?;
    let sources =
        Sources::new(VaultConfig::from_env()).map_err(|e| format!("Vault client: {e}"))?;
    Ok((github, sources))
}
