//! `rotor apply` and `rotor rotate NAME` while a daemon holds the ledger: the same work,
//! asked of the daemon through its control API (`ROTOR_API_URL`, token from
//! `ROTOR_API_TOKEN_FILE` or `ROTOR_API_TOKEN`).

use secrecy::ExposeSecret;

use super::args::Output;
use super::exit;

fn token() -> Result<secrecy::SecretString, String> {
    if let Some(path) = std::env::var_os("ROTOR_API_TOKEN_FILE") {
        return super::args::secret_from_file("ROTOR_API_TOKEN_FILE", std::path::Path::new(&path));
    }
    std::env::var("ROTOR_API_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .map(|t| secrecy::SecretString::from(t.trim().to_string()))
        .ok_or_else(|| {
            "ROTOR_API_URL is set but neither ROTOR_API_TOKEN_FILE nor ROTOR_API_TOKEN is"
                .to_string()
        })
}

/// Runs (`rotate`: rotates) each of `policies` through the daemon at `url`, one after
/// another; 0 when every one converged.
pub async fn run(url: &str, policies: &[String], rotate: bool, output: Output) -> u8 {
    let token = match token() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return exit::BAD_INPUT;
        }
    };
    let http = match reqwest::Client::builder()
        .redirect(rotor::net::same_origin_redirects("the rotor daemon"))
        .build()
    {
        Ok(h) => h,
        Err(e) => {
            eprintln!("{e}");
            return exit::FAILED;
        }
    };
    let verb = if rotate { "rotate" } else { "apply" };
    let mut code = exit::OK;
    let mut reports = Vec::new();
    for name in policies {
        let endpoint = format!("{}/v1/policies/{name}/{verb}", url.trim_end_matches('/'));
        let answer = http
            .post(&endpoint)
            .bearer_auth(token.expose_secret())
            .send()
            .await;
        let response = match answer {
            Ok(r) => r,
            Err(e) => {
                eprintln!("the daemon at {url} did not answer: {}", e.without_url());
                return exit::FAILED;
            }
        };
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            eprintln!(
                "the daemon refused {verb} of {name}: {status}: {}",
                body["message"].as_str().unwrap_or("")
            );
            code = exit::FAILED;
            continue;
        }
        let converged = body["converged"].as_bool().unwrap_or(false);
        if !converged {
            code = exit::FAILED;
        }
        let r = &body["report"];
        if output == Output::Text {
            println!(
                "policy {name}: {verb} through the daemon at {url}: version {}, {} pushed, {} failed{}",
                r["version"],
                r["pushed"].as_u64().unwrap_or(0),
                r["failures"].as_array().map_or(0, Vec::len),
                r["error"].as_str().map(|e| format!("; {e}")).unwrap_or_default(),
            );
        }
        reports.push(body);
    }
    if output == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&reports).unwrap_or_default()
        );
    }
    code
}
