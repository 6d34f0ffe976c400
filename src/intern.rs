//! One shared copy per distinct string or secret scope, for the structures that hold
//! a fleet's worth of records (the ledger's state, a plan): 100,000 targets repeat ten
//! policy names and 10,000 scopes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::model::SecretScope;

/// Hands out one shared copy per distinct string or scope.
#[derive(Clone, Default)]
pub struct Interner {
    strings: HashSet<Arc<str>>,
    scopes: HashMap<Arc<str>, Arc<SecretScope>>,
}

impl Interner {
    pub fn str(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.strings.get(s) {
            return Arc::clone(a);
        }
        let a: Arc<str> = Arc::from(s);
        self.strings.insert(Arc::clone(&a));
        a
    }

    /// The scope and its key (`SecretScope::key`), shared.
    pub fn scope(&mut self, scope: &SecretScope) -> (Arc<str>, Arc<SecretScope>) {
        let key = self.str(&scope.key());
        let shared = self
            .scopes
            .entry(Arc::clone(&key))
            .or_insert_with(|| Arc::new(scope.clone()));
        (key, Arc::clone(shared))
    }
}

impl std::fmt::Debug for Interner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interner")
            .field("strings", &self.strings.len())
            .field("scopes", &self.scopes.len())
            .finish()
    }
}

/// A cache of copies: equal whatever it holds.
impl PartialEq for Interner {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::App;

    #[test]
    fn equal_strings_and_scopes_share_one_copy() {
        let mut i = Interner::default();
        let a = i.str("secret-1");
        let b = i.str(&String::from("secret-1"));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &i.str("secret-2")));
        let scope = |repo: &str| SecretScope::Repo {
            owner: "acme".into(),
            repo: repo.into(),
            app: App::Actions,
        };
        let (k1, s1) = i.scope(&scope("api"));
        let (k2, s2) = i.scope(&scope("api"));
        assert!(Arc::ptr_eq(&s1, &s2) && Arc::ptr_eq(&k1, &k2));
        assert_eq!(&*k1, "acme/api");
        let (_, other) = i.scope(&scope("web"));
        assert!(!Arc::ptr_eq(&s1, &other));
        assert_eq!(*other, scope("web"));
    }
}
