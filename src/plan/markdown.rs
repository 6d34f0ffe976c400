//! The plan as Markdown, for a pull request comment or `$GITHUB_STEP_SUMMARY`: a summary
//! table, then a collapsed detail per policy. Never a value: plans hold none.

use std::fmt::Write;

use super::model::*;

/// A table cell: no line breaks, `|` escaped.
fn cell(s: &str) -> String {
    s.replace('\r', "").replace('\n', " ").replace('|', "\\|")
}

impl Plan {
    /// Whether applying this plan would change anything (a rotation, or any secret not
    /// `unchanged` or in `conflict`).
    pub fn has_changes(&self) -> bool {
        self.policies.iter().any(|p| {
            p.problem.is_none()
                && (p.rotate.is_some()
                    || p.targets.iter().any(|t| {
                        t.problem.is_none() && t.secrets.iter().any(|s| s.action.writes())
                    }))
        })
    }

    /// Whether some policy or target could not be planned, or some secret is in conflict
    /// (apply would leave it alone and fail).
    pub fn has_problems(&self) -> bool {
        self.policies.iter().any(|p| {
            p.problem.is_some()
                || p.targets.iter().any(|t| {
                    t.problem.is_some() || t.secrets.iter().any(|s| s.action == Action::Conflict)
                })
        })
    }

    pub fn to_markdown(&self) -> String {
        let c = self.counts();
        let mut md = String::from("### rotor plan\n\n");
        let _ = writeln!(
            md,
            "**{} to create, {} to rotate, {} to sync, {} drifted, {} access changes, {} in conflict, {} unchanged, {} with problems.**\n",
            c.create, c.rotate, c.sync, c.drift, c.access, c.conflict, c.unchanged, c.problems
        );
        md.push_str(
            "| policy | source | rotation | changes | conflicts | unchanged | problems |\n",
        );
        md.push_str("| --- | --- | --- | --- | --- | --- | --- |\n");
        for p in &self.policies {
            let count = |f: fn(Action) -> bool| {
                p.targets
                    .iter()
                    .flat_map(|t| &t.secrets)
                    .filter(|s| f(s.action))
                    .count()
            };
            let changes = count(Action::writes);
            let conflicts = count(|a| a == Action::Conflict);
            let unchanged = count(|a| a == Action::Unchanged);
            let problems = usize::from(p.problem.is_some())
                + p.targets.iter().filter(|t| t.problem.is_some()).count();
            let rotation = match (&p.problem, &p.rotate) {
                (Some(_), _) => "—".to_string(),
                (None, Some(r)) => r.describe(),
                (None, None) => format!(
                    "no (version {})",
                    p.version.map_or("none".to_string(), |v| v.to_string())
                ),
            };
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {changes} | {conflicts} | {unchanged} | {problems} |",
                cell(&p.policy),
                cell(&p.source),
                cell(&rotation)
            );
        }
        for p in &self.policies {
            let _ = writeln!(
                md,
                "\n<details><summary><code>{}</code>{}</summary>\n",
                cell(&p.policy),
                p.owner
                    .as_deref()
                    .map(|o| format!(" — owner {}", cell(o)))
                    .unwrap_or_default()
            );
            if let Some(problem) = &p.problem {
                let _ = writeln!(md, "> **problem:** {}\n", cell(problem));
            }
            if let Some(next) = p.next_due {
                let _ = writeln!(md, "Next due: {}\n", next.format("%Y-%m-%d %H:%M:%SZ"));
            }
            if p.targets.is_empty() && p.problem.is_none() {
                md.push_str("No repository matches the targets.\n");
            } else if !p.targets.is_empty() {
                md.push_str("| target | secret | action | reason |\n| --- | --- | --- | --- |\n");
                for t in &p.targets {
                    if let Some(problem) = &t.problem {
                        let _ = writeln!(
                            md,
                            "| {} | | **problem** | {} |",
                            cell(&t.target),
                            cell(problem)
                        );
                        continue;
                    }
                    for s in &t.secrets {
                        let action = if s.action == Action::Conflict {
                            "**conflict**"
                        } else {
                            s.action.as_str()
                        };
                        let _ = writeln!(
                            md,
                            "| {} | `{}` | {action} | {} |",
                            cell(&t.target),
                            cell(&s.name),
                            cell(&s.reason)
                        );
                    }
                }
            }
            md.push_str("\n</details>\n");
        }
        if !self.warnings.is_empty() {
            md.push_str("\n**Warnings**\n\n");
            for w in &self.warnings {
                let _ = writeln!(
                    md,
                    "- `{}`{}: {}",
                    cell(&w.policy),
                    if w.target.is_empty() {
                        String::new()
                    } else {
                        format!(" {}", cell(&w.target))
                    },
                    cell(&w.message)
                );
            }
        }
        md
    }
}
