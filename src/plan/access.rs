//! Organization secrets' access: whether GitHub's visibility and selected repositories
//! still match what a policy resolves to, when the value itself is current.

use std::collections::BTreeSet;

use super::model::Action;
use crate::model::{OrgAccess, SecretMeta};
use crate::policy::Visibility;

/// The action for an organization secret whose value is current (`Unchanged`), given what
/// GitHub shows: `Sync` when its visibility differs (only a full PUT changes visibility),
/// `Access` when only the selected repositories differ, `None` when all is in step or
/// nothing was observed.
pub fn compare(
    desired: Option<&OrgAccess>,
    meta: Option<&SecretMeta>,
    current_ids: Option<&Result<Vec<u64>, String>>,
) -> Option<(Action, String)> {
    let desired = desired?;
    let meta = meta?;
    let want = desired.visibility.as_str();
    if let Some(have) = meta.visibility.as_deref() {
        if have != want {
            return Some((
                Action::Sync,
                format!("visibility is {have} on GitHub, the policy says {want}: writing it again"),
            ));
        }
    }
    if desired.visibility != Visibility::Selected {
        return None;
    }
    let wanted: BTreeSet<u64> = desired.selected_repository_ids.iter().copied().collect();
    match current_ids? {
        Err(e) => Some((
            Action::Access,
            format!(
                "the selected repositories could not be read ({e}); setting them to {} repositories",
                wanted.len()
            ),
        )),
        Ok(ids) => {
            let have: BTreeSet<u64> = ids.iter().copied().collect();
            if have == wanted {
                return None;
            }
            let added = wanted.difference(&have).count();
            let removed = have.difference(&wanted).count();
            Some((
                Action::Access,
                format!(
                    "selected repositories change: {added} added, {removed} removed ({} in all)",
                    wanted.len()
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn meta(visibility: &str) -> SecretMeta {
        SecretMeta {
            name: "T".into(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
            visibility: Some(visibility.into()),
        }
    }

    fn selected(ids: &[u64]) -> OrgAccess {
        OrgAccess {
            visibility: Visibility::Selected,
            selected_repository_ids: ids.to_vec(),
        }
    }

    #[test]
    fn a_changed_repository_set_is_an_access_update_and_an_equal_one_is_nothing() {
        let want = selected(&[1, 2, 3]);
        let same = Ok(vec![3, 2, 1]);
        assert_eq!(
            compare(Some(&want), Some(&meta("selected")), Some(&same)),
            None
        );
        let grown = Ok(vec![1, 2]);
        let (action, reason) =
            compare(Some(&want), Some(&meta("selected")), Some(&grown)).expect("differs");
        assert_eq!(action, Action::Access);
        assert!(reason.contains("1 added, 0 removed (3 in all)"), "{reason}");
        let shrunk = Ok(vec![1, 2, 3, 4]);
        let (_, reason) =
            compare(Some(&want), Some(&meta("selected")), Some(&shrunk)).expect("differs");
        assert!(reason.contains("0 added, 1 removed"), "{reason}");
    }

    #[test]
    fn a_different_visibility_needs_a_full_write() {
        let want = selected(&[1]);
        let (action, _) = compare(Some(&want), Some(&meta("all")), None).expect("differs");
        assert_eq!(action, Action::Sync);
        let all = OrgAccess {
            visibility: Visibility::All,
            selected_repository_ids: vec![],
        };
        assert_eq!(compare(Some(&all), Some(&meta("all")), None), None);
    }

    #[test]
    fn nothing_observed_means_nothing_to_do() {
        assert_eq!(compare(Some(&selected(&[1])), None, None), None);
        assert_eq!(
            compare(Some(&selected(&[1])), Some(&meta("selected")), None),
            None
        );
        assert_eq!(compare(None, Some(&meta("selected")), None), None);
    }
}
