//! When rotor runs inside GitHub Actions (`GITHUB_ACTIONS=true`): failures and warnings as
//! workflow annotations (`::error::` / `::warning::`, on stderr, which the runner reads too,
//! so that `--output json` on stdout stays JSON), a Markdown summary of the apply in
//! `$GITHUB_STEP_SUMMARY`, and a plain explanation when the credential is the workflow's
//! own `GITHUB_TOKEN`, which cannot write secrets. Never a value: the summary and the
//! annotations hold what the report holds.

use std::io::Write;

use rotor::apply::Report;
use rotor::plan::Plan;

/// Whether this process runs as a GitHub Actions step.
pub fn in_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// A workflow command's data, escaped as the runner expects (`%`, CR, LF).
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A property value (`title=`), escaped as the runner expects (also `:` and `,`).
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// One annotation line: `::error title=T::message`.
pub fn annotation(level: &str, title: &str, message: &str) -> String {
    format!(
        "::{level} title={}::{}",
        escape_property(title),
        escape_data(message)
    )
}

/// The annotations for an apply's report: one `::error::` per failed target and per policy
/// error.
pub fn report_annotations(report: &Report) -> Vec<String> {
    let mut out = Vec::new();
    for p in &report.policies {
        if let Some(e) = &p.error {
            out.push(annotation("error", &format!("rotor: {}", p.policy), e));
        }
        for f in &p.failures {
            out.push(annotation(
                "error",
                &format!("rotor: {} {}", p.policy, f.target),
                &f.message,
            ));
        }
    }
    out
}

/// The plan's warnings as `::warning::` annotations.
pub fn plan_annotations(plan: &Plan) -> Vec<String> {
    plan.warnings
        .iter()
        .map(|w| {
            annotation(
                "warning",
                &format!("rotor: {} {}", w.policy, w.target),
                &w.message,
            )
        })
        .collect()
}

/// The job summary: one row per policy (version, rotated, pushed, failed) and the failures.
pub fn summary_markdown(report: &Report) -> String {
    let mut md = String::from("### rotor apply\n\n| policy | version | rotated | pushed | failed |\n| --- | --- | --- | --- | --- |\n");
    for p in &report.policies {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            p.policy,
            p.version.map_or("-".to_string(), |v| v.to_string()),
            p.rotated.as_deref().unwrap_or("no"),
            p.pushed,
            p.failures.len() + usize::from(p.error.is_some()),
        ));
    }
    let failures: Vec<String> = report
        .policies
        .iter()
        .flat_map(|p| {
            p.error
                .iter()
                .map(move |e| format!("- `{}`: {}", p.policy, e.replace('\n', " ")))
                .chain(p.failures.iter().map(move |f| {
                    format!(
                        "- `{}` {}: {}",
                        p.policy,
                        f.target,
                        f.message.replace('\n', " ")
                    )
                }))
        })
        .collect();
    if !failures.is_empty() {
        md.push_str("\n**Failures**\n\n");
        md.push_str(&failures.join("\n"));
        md.push('\n');
    }
    md
}

/// Appends `markdown` to `$GITHUB_STEP_SUMMARY`, when the runner gives one.
pub fn write_summary(markdown: &str) {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") else {
        return;
    };
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(markdown.as_bytes()));
    if let Err(e) = written {
        eprintln!("could not write the job summary: {e}");
    }
}

/// What to say when rotor, in Actions, would reach GitHub with the workflow's own
/// `GITHUB_TOKEN` (`ghs_` and no App configured): it has no `secrets` permission, so
/// every write would be a bare 403.
pub fn workflow_token_explanation() -> Option<String> {
    if !in_actions()
        || std::env::var_os("GITHUB_APP_ID").is_some()
        || std::env::var_os("GITHUB_APP_CLIENT_ID").is_some()
    {
        return None;
    }
    let token = std::env::var("GITHUB_TOKEN")
        .ok()
        .or_else(|| std::env::var("GH_TOKEN").ok())?;
    token.starts_with("ghs_").then(|| {
        "rotor is reaching GitHub with what looks like this workflow's own GITHUB_TOKEN: \
         GitHub never grants it the `secrets` permission, so it cannot write repository, \
         environment or organization secrets. Use a GitHub App instead (GITHUB_APP_ID and \
         GITHUB_APP_PRIVATE_KEY_FILE from a secret; see examples/github-actions/rotate.yml), \
         or a fine-grained token with Secrets: write stored as a repository secret"
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_escape_what_the_runner_would_read_as_commands() {
        assert_eq!(
            annotation("error", "rotor: p acme/a", "100% bad\nnext: line"),
            "::error title=rotor%3A p acme/a::100%25 bad%0Anext: line"
        );
    }

    #[test]
    fn the_summary_is_a_table_per_policy() {
        let report = Report::default();
        assert!(summary_markdown(&report).starts_with("### rotor apply\n\n| policy |"));
    }
}
