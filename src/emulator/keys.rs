//! One X25519 key pair per secret scope, made on first use, with GitHub-like numeric key ids.

use base64::Engine as _;
use crypto_box::aead::rand_core::RngCore as _;
use crypto_box::aead::OsRng;
use crypto_box::SecretKey;

/// A scope's current key pair. The secret half never leaves the emulator.
#[derive(Clone)]
pub(crate) struct ScopeKey {
    /// Numeric-looking id, as GitHub's (e.g. `3380204578043523366`); new on every rotation.
    pub key_id: String,
    /// Base64 of the 32-byte public key, as the public-key endpoints return it.
    pub public_b64: String,
    secret: SecretKey,
}

impl ScopeKey {
    /// A fresh key pair whose id differs from `previous`.
    pub fn generate(previous: Option<&str>) -> Self {
        let secret = SecretKey::generate(&mut OsRng);
        let public_b64 =
            base64::engine::general_purpose::STANDARD.encode(secret.public_key().as_bytes());
        let key_id = loop {
            // 19 digits, never starting with 0, like the ids GitHub hands out.
            let id = 1_000_000_000_000_000_000 + OsRng.next_u64() % 8_000_000_000_000_000_000;
            let id = id.to_string();
            if previous != Some(id.as_str()) {
                break id;
            }
        };
        ScopeKey {
            key_id,
            public_b64,
            secret,
        }
    }

    /// The secret half, to open a sealed box outside the state lock.
    pub fn secret(&self) -> SecretKey {
        self.secret.clone()
    }
}

/// Opens a libsodium sealed box; `None` when it was not sealed to this key or is damaged.
pub(crate) fn open_sealed(secret: &SecretKey, ciphertext: &[u8]) -> Option<Vec<u8>> {
    secret.unseal(ciphertext).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_sealed_to_the_public_key_opens_with_the_secret_key() {
        let key = ScopeKey::generate(None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&key.public_b64)
            .expect("base64");
        let public = crypto_box::PublicKey::from_slice(&bytes).expect("32 bytes");
        let sealed = public.seal(&mut OsRng, b"hello").expect("seal");
        assert_eq!(sealed.len(), 5 + 48);
        assert_eq!(
            open_sealed(&key.secret(), &sealed).as_deref(),
            Some(&b"hello"[..])
        );
        let other = ScopeKey::generate(Some(&key.key_id));
        assert_ne!(other.key_id, key.key_id);
        assert_eq!(open_sealed(&other.secret(), &sealed), None);
        assert_eq!(key.key_id.len(), 19);
        assert!(key.key_id.chars().all(|c| c.is_ascii_digit()));
    }
}
