//! Renders a plan for people (text) and for machines (JSON). Never a value: plans hold none.

use std::fmt::Write;

use super::model::*;

/// Counts of secret actions across a plan.
#[derive(Debug, Default, Clone, Copy, serde::Serialize, PartialEq, Eq)]
pub struct Counts {
    pub create: usize,
    pub rotate: usize,
    pub sync: usize,
    pub drift: usize,
    /// Organization secrets whose selected repositories are updated.
    pub access: usize,
    /// Secrets of the same name that rotor did not write, left alone (no `takeover`).
    pub conflict: usize,
    pub unchanged: usize,
    pub problems: usize,
    pub warnings: usize,
}

impl Plan {
    pub fn counts(&self) -> Counts {
        let mut c = Counts {
            warnings: self.warnings.len(),
            ..Counts::default()
        };
        for p in &self.policies {
            if p.problem.is_some() {
                c.problems += 1;
            }
            for t in &p.targets {
                if t.problem.is_some() {
                    c.problems += 1;
                    continue;
                }
                for s in &t.secrets {
                    match s.action {
                        Action::Create => c.create += 1,
                        Action::Rotate => c.rotate += 1,
                        Action::Sync => c.sync += 1,
                        Action::Drift => c.drift += 1,
                        Action::Access => c.access += 1,
                        Action::Conflict => c.conflict += 1,
                        Action::Unchanged => c.unchanged += 1,
                    }
                }
            }
        }
        c
    }

    pub fn to_json(&self) -> String {
        let mut v = serde_json::to_value(self).expect("plans serialize");
        v["summary"] = serde_json::to_value(self.counts()).expect("counts serialize");
        serde_json::to_string_pretty(&v).expect("plans serialize")
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for p in &self.policies {
            let _ = write!(out, "policy {}  ({}", p.policy, p.source);
            if let Some(o) = &p.owner {
                let _ = write!(out, "; owner {o}");
            }
            out.push_str(")\n");
            if let Some(problem) = &p.problem {
                let _ = writeln!(out, "  ! {problem}");
                continue;
            }
            match &p.rotate {
                Some(r) => {
                    let _ = writeln!(out, "  rotate: {}", r.describe());
                }
                None => {
                    let _ = writeln!(
                        out,
                        "  version: {}",
                        p.version
                            .map(|v| v.to_string())
                            .unwrap_or_else(|| "none".into())
                    );
                }
            }
            if let Some(next) = p.next_due {
                let _ = writeln!(out, "  next due: {}", next.format("%Y-%m-%d %H:%M:%SZ"));
            }
            if let Some(exp) = p.expires_at {
                let _ = writeln!(
                    out,
                    "  current value expires: {}",
                    exp.format("%Y-%m-%d %H:%M:%SZ")
                );
            }
            for t in &p.vault_targets {
                let _ = writeln!(out, "  > {t}");
            }
            if let Some(t) = &p.txn {
                txn_text(&mut out, t);
            }
            if p.targets.is_empty() && p.vault_targets.is_empty() {
                out.push_str("  (no repository matches the targets)\n");
            }
            let width = p.targets.iter().map(|t| t.target.len()).max().unwrap_or(0);
            for t in &p.targets {
                if let Some(problem) = &t.problem {
                    let _ = writeln!(out, "  ! {:width$}  {problem}", t.target);
                    continue;
                }
                for s in &t.secrets {
                    let sign = match s.action {
                        Action::Create => '+',
                        Action::Rotate | Action::Sync | Action::Drift | Action::Access => '~',
                        Action::Conflict => '!',
                        Action::Unchanged => '=',
                    };
                    let _ = writeln!(
                        out,
                        "  {sign} {:width$}  {:<24} {:<9} {}",
                        t.target,
                        s.name,
                        s.action.as_str(),
                        s.reason
                    );
                }
            }
            out.push('\n');
        }
        for w in &self.warnings {
            let _ = writeln!(
                out,
                "warning: policy {}{}{}: {}",
                w.policy,
                if w.target.is_empty() {
                    String::new()
                } else {
                    format!(" target {}", w.target)
                },
                w.secret
                    .as_deref()
                    .map(|s| format!(" secret {s}"))
                    .unwrap_or_default(),
                w.message
            );
        }
        let c = self.counts();
        if c.access > 0 {
            let _ = writeln!(
                out,
                "Access: {} organization secret(s) get a new list of selected repositories.",
                c.access
            );
        }
        let _ = writeln!(
            out,
            "Plan: {} to create, {} to rotate, {} to sync, {} drifted, {} in conflict, {} unchanged, {} with problems.",
            c.create, c.rotate, c.sync, c.drift, c.conflict, c.unchanged, c.problems
        );
        if c.conflict > 0 {
            let _ = writeln!(
                out,
                "Conflicts: {} secret(s) exist that rotor did not write; they are left alone unless the policy says `takeover: true`.",
                c.conflict
            );
        }
        if let Some(e) = self.estimate.as_ref().filter(|e| e.requests > 0) {
            let _ = writeln!(out, "{}", e.describe());
        }
        out
    }
}

/// The transaction lines of a policy: its version, the waves and the runs each dispatches.
fn txn_text(out: &mut String, t: &TxnPlan) {
    let version = t
        .version
        .map(|v| format!("version {v}"))
        .unwrap_or_else(|| "a new version".into());
    let previous = t
        .previous
        .map(|v| format!("version {v}"))
        .unwrap_or_else(|| "none".into());
    let _ = write!(out, "  transaction: {version}, rollback to {previous}");
    if let Some(state) = &t.resume {
        let _ = write!(out, "; resumes from {state}");
    }
    let _ = writeln!(out, "; on failure: {}", t.waves.on_failure.as_str());
    if let Some(lost) = t.abandon {
        let _ = writeln!(
            out,
            "  ! open transaction for version {lost} ends halted: its value was stored nowhere"
        );
    }
    let list = |v: &[String]| -> String {
        const SHOWN: usize = 10;
        let mut s = v.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
        if v.len() > SHOWN {
            let _ = write!(s, ", ... ({} more)", v.len() - SHOWN);
        }
        if s.is_empty() {
            s = "none".into();
        }
        s
    };
    let workflow = t.workflow.as_deref().unwrap_or("");
    let waves: [(&str, &Vec<String>, &Vec<String>); 2] = [
        ("canary", &t.waves.canary, &t.waves.verify_canary),
        ("fleet", &t.waves.rest, &t.waves.verify_rest),
    ];
    for (name, targets, runs) in waves {
        if targets.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "  wave {name}: {} target(s): {}",
            targets.len(),
            list(targets)
        );
        if !workflow.is_empty() {
            let _ = writeln!(
                out,
                "    then {workflow} in {} repositor{}: {}",
                runs.len(),
                if runs.len() == 1 { "y" } else { "ies" },
                list(runs)
            );
        }
    }
}
