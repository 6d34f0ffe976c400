//! One X25519 key pair per secret scope, made on first use, with GitHub-like numeric key ids.

use base64::Engine as _;
use crypto_box::aead::rand_core::RngCore as _;
use crypto_box::aead::OsRng;
use crypto_box::{PublicKey, SecretKey};

/// A scope's current key pair. The secret half never leaves the emulator.
#[derive(Clone)]
pub(crate) struct ScopeKey {
    /// Numeric-looking id, as GitHub's (e.g. `3380204578043523366`); new on every rotation.
    pub key_id: String,
    /// Base64 of the 32-byte public key, as the public-key endpoints return it.
    pub public_b64: String,
    opener: Opener,
}

impl ScopeKey {
    /// A fresh key pair whose id differs from `previous`.
    pub fn generate(previous: Option<&str>) -> Self {
        let secret = SecretKey::generate(&mut OsRng);
        let public = secret.public_key();
        let public_b64 = base64::engine::general_purpose::STANDARD.encode(public.as_bytes());
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
            opener: Opener { secret, public },
        }
    }

    /// What opens values sealed to this key, to use outside the state lock.
    pub fn opener(&self) -> Opener {
        self.opener.clone()
    }
}

/// A key pair that opens libsodium sealed boxes.
#[derive(Clone)]
pub(crate) struct Opener {
    secret: SecretKey,
    /// Kept rather than derived on every open: deriving it is a scalar multiplication,
    /// as costly as the opening itself.
    public: PublicKey,
}

impl Opener {
    /// Opens a libsodium sealed box (`crypto_box_seal_open`); `None` when it was not sealed
    /// to this key or is damaged. The same steps as `SecretKey::unseal`, with the public
    /// key at hand: nonce = BLAKE2b-192(ephemeral public key || recipient public key), then
    /// the XSalsa20-Poly1305 box between the ephemeral key and this one.
    pub fn open(&self, ciphertext: &[u8]) -> Option<Vec<u8>> {
        use blake2::digest::consts::U24;
        use blake2::{Blake2b, Digest as _};
        use crypto_box::aead::Aead as _;
        if ciphertext.len() <= crypto_box::KEY_SIZE {
            return None;
        }
        let (ephemeral, boxed) = ciphertext.split_at(crypto_box::KEY_SIZE);
        let ephemeral = PublicKey::from_slice(ephemeral).ok()?;
        let mut hasher = Blake2b::<U24>::new();
        hasher.update(ephemeral.as_bytes());
        hasher.update(self.public.as_bytes());
        let nonce = hasher.finalize();
        crypto_box::SalsaBox::new(&ephemeral, &self.secret)
            .decrypt(&nonce, boxed)
            .ok()
    }
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
        assert_eq!(key.opener().open(&sealed).as_deref(), Some(&b"hello"[..]));
        // The same answer as the library's own `unseal`, which derives the public key.
        assert_eq!(
            key.opener().secret.unseal(&sealed).ok().as_deref(),
            Some(&b"hello"[..])
        );
        let other = ScopeKey::generate(Some(&key.key_id));
        assert_ne!(other.key_id, key.key_id);
        assert_eq!(other.opener().open(&sealed), None);
        let mut tampered = sealed.clone();
        *tampered.last_mut().expect("not empty") ^= 1;
        assert_eq!(key.opener().open(&tampered), None);
        assert_eq!(key.opener().open(&sealed[..32]), None);
        assert_eq!(key.key_id.len(), 19);
        assert!(key.key_id.chars().all(|c| c.is_ascii_digit()));
    }
}
