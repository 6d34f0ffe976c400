//! The workflows a repository of the fleet carries: which secrets a run checks, how long it
//! takes, whether it fails or hangs, and what its log prints. A plain string in a fleet file
//! (`verify-secrets.yml`) is short for `{file: verify-secrets.yml}`.

use std::fmt;
use std::time::Duration;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::errors::FleetError;

/// How long a run waits in the queue unless the workflow says otherwise.
pub const DEFAULT_QUEUE_DELAY: Duration = Duration::from_millis(100);
/// How long a run's job runs unless the workflow says otherwise.
pub const DEFAULT_DURATION: Duration = Duration::from_millis(300);

/// One file in `.github/workflows` with one job, `verify`, whose steps are "Set up job",
/// "Check secrets", "Run tests" and "Complete job".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkflowSpec {
    /// The file name in `.github/workflows`, e.g. `verify-secrets.yml`.
    pub file: String,
    /// Numeric id; assigned when absent. Unique within the repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// The workflow's `name:`; default: the file name without its extension.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Has an `on: workflow_dispatch` trigger (default true); without it, dispatches are 422.
    pub dispatch: bool,
    /// Time from queued to in_progress (real time).
    #[serde(with = "duration_text")]
    pub queue_delay: Duration,
    /// Time from in_progress to completed (real time).
    #[serde(with = "duration_text")]
    pub duration: Duration,
    /// What step "Check secrets" requires; any rule broken: conclusion `failure`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub require: Vec<SecretRule>,
    /// Step "Run tests" always fails.
    pub fail: bool,
    /// The run stays in_progress until [`crate::Emulator::complete_run`] ends it.
    pub never_conclude: bool,
    /// Secrets whose plaintext value and its base64 the log prints (to prove redaction).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub echo: Vec<String>,
    /// The environment the job references: its secrets are read when the job starts and
    /// win over repository and organization secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

/// A requirement on one secret as the job sees it: `{secret: NAME}` (set and not empty),
/// `{secret: NAME, equals: VALUE}` or `{secret: NAME, matches: REGEX}`.
/// Its `Debug` never shows `equals` (a value a test expects a secret to hold).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRule {
    pub secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
}

impl fmt::Debug for SecretRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretRule")
            .field("secret", &self.secret)
            .field("equals", &self.equals.as_ref().map(|_| "***"))
            .field("matches", &self.matches)
            .finish()
    }
}

impl WorkflowSpec {
    /// A dispatchable workflow that requires nothing and succeeds after the default delays.
    pub fn new(file: &str) -> Self {
        WorkflowSpec {
            file: file.to_string(),
            id: None,
            name: None,
            dispatch: true,
            queue_delay: DEFAULT_QUEUE_DELAY,
            duration: DEFAULT_DURATION,
            require: Vec::new(),
            fail: false,
            never_conclude: false,
            echo: Vec::new(),
            environment: None,
        }
    }

    pub fn id(mut self, id: u64) -> Self {
        self.id = Some(id);
        self
    }

    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    pub fn dispatch(mut self, dispatch: bool) -> Self {
        self.dispatch = dispatch;
        self
    }

    pub fn queue_delay(mut self, d: Duration) -> Self {
        self.queue_delay = d;
        self
    }

    pub fn duration(mut self, d: Duration) -> Self {
        self.duration = d;
        self
    }

    /// The secret must be set and not empty.
    pub fn require_set(mut self, secret: &str) -> Self {
        self.require.push(SecretRule {
            secret: secret.to_string(),
            equals: None,
            matches: None,
        });
        self
    }

    /// The secret must equal `value`.
    pub fn require_equals(mut self, secret: &str, value: &str) -> Self {
        self.require.push(SecretRule {
            secret: secret.to_string(),
            equals: Some(value.to_string()),
            matches: None,
        });
        self
    }

    /// The secret must match the regular expression `re` (unanchored, as `grep -E`).
    pub fn require_matches(mut self, secret: &str, re: &str) -> Self {
        self.require.push(SecretRule {
            secret: secret.to_string(),
            equals: None,
            matches: Some(re.to_string()),
        });
        self
    }

    pub fn fail(mut self, fail: bool) -> Self {
        self.fail = fail;
        self
    }

    pub fn never_conclude(mut self, never: bool) -> Self {
        self.never_conclude = never;
        self
    }

    /// The log prints this secret's value and its base64.
    pub fn echo(mut self, secret: &str) -> Self {
        self.echo.push(secret.to_string());
        self
    }

    pub fn environment(mut self, environment: &str) -> Self {
        self.environment = Some(environment.to_string());
        self
    }

    /// The workflow's display name.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            let stem = self
                .file
                .rsplit_once('.')
                .map(|(s, _)| s)
                .unwrap_or(&self.file);
            stem.to_string()
        })
    }

    /// Checks the file name, the rules (one of `equals`/`matches`, a regex that compiles)
    /// and that the environment is one of `environments`.
    pub fn validate(&self, repo: &str, environments: &[String]) -> Result<(), FleetError> {
        let bad = |what: String| Err(FleetError::Invalid(format!("{repo}: {what}")));
        let f = &self.file;
        if f.is_empty()
            || f.len() > 255
            || f.contains('/')
            || !(f.ends_with(".yml") || f.ends_with(".yaml"))
        {
            return bad(format!(
                "workflow {f:?} is not a .yml or .yaml file name in .github/workflows"
            ));
        }
        for rule in &self.require {
            if rule.secret.is_empty() {
                return bad(format!("workflow {f} requires a secret with no name"));
            }
            match (&rule.equals, &rule.matches) {
                (Some(_), Some(_)) => {
                    return bad(format!(
                        "workflow {f}: the rule on {} has both equals and matches",
                        rule.secret
                    ))
                }
                (None, Some(re)) => {
                    if let Err(e) = regex::Regex::new(re) {
                        return bad(format!(
                            "workflow {f}: the rule on {} has an invalid regex: {e}",
                            rule.secret
                        ));
                    }
                }
                _ => {}
            }
        }
        if let Some(env) = &self.environment {
            if !environments
                .iter()
                .any(|e| e.to_lowercase() == env.to_lowercase())
            {
                return bad(format!(
                    "workflow {f} references environment {env}, which the repository does not have"
                ));
            }
        }
        Ok(())
    }
}

/// The fields of a workflow entry written out as a map.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkflowFields {
    file: String,
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default = "yes")]
    dispatch: bool,
    #[serde(default = "default_queue_delay", with = "duration_text")]
    queue_delay: Duration,
    #[serde(default = "default_duration", with = "duration_text")]
    duration: Duration,
    #[serde(default)]
    require: Vec<SecretRule>,
    #[serde(default)]
    fail: bool,
    #[serde(default)]
    never_conclude: bool,
    #[serde(default)]
    echo: Vec<String>,
    #[serde(default)]
    environment: Option<String>,
}

fn yes() -> bool {
    true
}

fn default_queue_delay() -> Duration {
    DEFAULT_QUEUE_DELAY
}

fn default_duration() -> Duration {
    DEFAULT_DURATION
}

impl From<WorkflowFields> for WorkflowSpec {
    fn from(f: WorkflowFields) -> Self {
        WorkflowSpec {
            file: f.file,
            id: f.id,
            name: f.name,
            dispatch: f.dispatch,
            queue_delay: f.queue_delay,
            duration: f.duration,
            require: f.require,
            fail: f.fail,
            never_conclude: f.never_conclude,
            echo: f.echo,
            environment: f.environment,
        }
    }
}

impl<'de> Deserialize<'de> for WorkflowSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WorkflowSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a workflow file name or a map with `file`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<WorkflowSpec, E> {
                Ok(WorkflowSpec::new(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<WorkflowSpec, A::Error> {
                WorkflowFields::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(WorkflowSpec::from)
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads `250ms`, `2s`, `1m`, `1h` (or a bare number of milliseconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 50ms or 2s"))?;
    let ms = match unit.trim() {
        "" | "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}; use ms, s, m or h"
            ))
        }
    };
    ms.map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// Durations written as `200ms`, `2s`, `1m` (or a number of milliseconds).
mod duration_text {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}ms", d.as_millis()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Text {
            Millis(u64),
            Text(String),
        }
        match Text::deserialize(d)? {
            Text::Millis(ms) => Ok(Duration::from_millis(ms)),
            Text::Text(t) => super::parse_duration(&t).map_err(de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct List {
        workflows: Vec<WorkflowSpec>,
    }

    #[test]
    fn a_plain_name_is_short_for_a_file_and_maps_take_every_field() {
        let yaml = "workflows:\n  - verify-secrets.yml\n  - file: ci.yaml\n    name: CI\n    dispatch: false\n    queue_delay: 20ms\n    duration: 2s\n    require:\n      - {secret: DB_PASSWORD, equals: hunter2}\n      - {secret: API_KEY, matches: '^ak_'}\n      - {secret: TOKEN}\n    fail: true\n    echo: [DB_PASSWORD]\n    environment: production\n";
        let list: List = serde_saphyr::from_str(yaml).expect("valid");
        assert_eq!(list.workflows[0], WorkflowSpec::new("verify-secrets.yml"));
        let ci = &list.workflows[1];
        let built = WorkflowSpec::new("ci.yaml")
            .name("CI")
            .dispatch(false)
            .queue_delay(Duration::from_millis(20))
            .duration(Duration::from_secs(2))
            .require_equals("DB_PASSWORD", "hunter2")
            .require_matches("API_KEY", "^ak_")
            .require_set("TOKEN")
            .fail(true)
            .echo("DB_PASSWORD")
            .environment("production");
        assert_eq!(*ci, built);
        assert_eq!(ci.display_name(), "CI");
        assert_eq!(list.workflows[0].display_name(), "verify-secrets");
        assert!(
            serde_saphyr::from_str::<List>("workflows:\n  - {file: a.yml, colour: red}\n").is_err()
        );
    }

    #[test]
    fn bad_regexes_names_and_environments_are_refused() {
        let envs = vec!["production".to_string()];
        let ok = WorkflowSpec::new("v.yml").require_matches("A", "^x+$");
        assert!(ok.validate("api", &envs).is_ok());
        let re = WorkflowSpec::new("v.yml").require_matches("A", "(unclosed");
        assert!(re
            .validate("api", &envs)
            .unwrap_err()
            .to_string()
            .contains("regex"));
        assert!(WorkflowSpec::new("v.txt").validate("api", &envs).is_err());
        assert!(WorkflowSpec::new("v.yml")
            .environment("staging")
            .validate("api", &envs)
            .is_err());
        assert!(WorkflowSpec::new("v.yml")
            .environment("Production")
            .validate("api", &envs)
            .is_ok());
    }
}
