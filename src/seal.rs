//! Sealing: libsodium sealed boxes (`crypto_box_seal`) with a target's X25519 public key.
//!
//! GitHub hands out one public key per secret scope, base64-encoded; it accepts a value only
//! as a sealed box made with that key, base64-encoded again. This is the one place where a
//! plaintext value turns into something that may travel.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use crypto_box::aead::OsRng;
use crypto_box::PublicKey;
use secrecy::{ExposeSecret, SecretString};

/// Size of an X25519 public key, in bytes.
pub const PUBLIC_KEY_LEN: usize = 32;

/// What a sealed box adds to the plaintext: the ephemeral public key (32 bytes) and the
/// Poly1305 tag (16 bytes).
pub const SEAL_OVERHEAD: usize = 48;

/// Why a value could not be sealed. Never carries the plaintext, nor the key material.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("public key is not valid base64: {0}")]
    KeyNotBase64(base64::DecodeError),
    #[error("public key is {actual} bytes long, an X25519 key is {PUBLIC_KEY_LEN}")]
    KeyLength { actual: usize },
    #[error("the sealed box could not be made")]
    Encrypt,
}

/// Seals `plaintext` for the holder of the secret key matching `public_key_b64` (standard,
/// padded base64, as GitHub serves it) and returns the sealed box in standard padded base64,
/// as GitHub expects it.
///
/// Each call uses a fresh ephemeral key pair, so sealing the same value twice gives two
/// different ciphertexts. The ciphertext is `plaintext.len() + 48` bytes before encoding.
pub fn seal(public_key_b64: &str, plaintext: &SecretString) -> Result<String, SealError> {
    let key = parse_public_key(public_key_b64)?;
    let sealed = key
        .seal(&mut OsRng, plaintext.expose_secret().as_bytes())
        .map_err(|_| SealError::Encrypt)?;
    Ok(STANDARD.encode(sealed))
}

/// Decodes and checks a base64 X25519 public key.
fn parse_public_key(public_key_b64: &str) -> Result<PublicKey, SealError> {
    let bytes = STANDARD
        .decode(public_key_b64.trim())
        .map_err(SealError::KeyNotBase64)?;
    PublicKey::from_slice(&bytes).map_err(|_| SealError::KeyLength {
        actual: bytes.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto_box::SecretKey;

    fn key_pair() -> (SecretKey, String) {
        let sk = SecretKey::generate(&mut OsRng);
        let pk_b64 = STANDARD.encode(sk.public_key().as_bytes());
        (sk, pk_b64)
    }

    fn open(sk: &SecretKey, sealed_b64: &str) -> Vec<u8> {
        let ciphertext = STANDARD
            .decode(sealed_b64)
            .expect("rotor emits valid base64");
        sk.unseal(&ciphertext)
            .expect("the matching secret key opens the box")
    }

    #[derive(serde::Deserialize)]
    struct Kat {
        secret_key_b64: String,
        public_key_b64: String,
        message: String,
        ciphertext_b64: String,
        made_with: String,
    }

    /// The known-answer vector made with libsodium by `tests/data/make-seal-kat.py`.
    fn kat() -> Kat {
        let text = include_str!("../tests/data/seal-kat.json");
        serde_json::from_str(text).expect("tests/data/seal-kat.json is well-formed")
    }

    fn kat_secret_key(kat: &Kat) -> SecretKey {
        let bytes = STANDARD
            .decode(&kat.secret_key_b64)
            .expect("KAT key is base64");
        SecretKey::from_slice(&bytes).expect("KAT secret key is 32 bytes")
    }

    #[test]
    fn a_sealed_value_opens_with_the_matching_secret_key() {
        let (sk, pk) = key_pair();
        let value = SecretString::from("s3cr3t-value with spaces & ünïcode");
        let sealed = seal(&pk, &value).expect("a valid key seals");
        assert_eq!(open(&sk, &sealed), value.expose_secret().as_bytes());
    }

    #[test]
    fn the_ciphertext_is_48_bytes_longer_than_the_plaintext() {
        let (_, pk) = key_pair();
        for len in [0usize, 1, 40, 4096] {
            let value = SecretString::from("x".repeat(len));
            let sealed = STANDARD.decode(seal(&pk, &value).unwrap()).unwrap();
            assert_eq!(
                sealed.len(),
                len + SEAL_OVERHEAD,
                "plaintext of {len} bytes"
            );
        }
    }

    #[test]
    fn sealing_twice_gives_different_ciphertexts() {
        let (_, pk) = key_pair();
        let value = SecretString::from("same value");
        assert_ne!(seal(&pk, &value).unwrap(), seal(&pk, &value).unwrap());
    }

    #[test]
    fn a_box_sealed_for_another_key_does_not_open() {
        let (_, pk) = key_pair();
        let (other_sk, _) = key_pair();
        let sealed = seal(&pk, &SecretString::from("value")).unwrap();
        let ciphertext = STANDARD.decode(sealed).unwrap();
        assert!(other_sk.unseal(&ciphertext).is_err());
    }

    #[test]
    fn a_key_that_is_not_base64_is_refused() {
        let err = seal("not base64 at all!", &SecretString::from("canary-7731")).unwrap_err();
        assert!(matches!(err, SealError::KeyNotBase64(_)), "{err}");
        assert!(!err.to_string().contains("canary-7731"));
    }

    #[test]
    fn a_key_of_the_wrong_length_is_refused() {
        let short = STANDARD.encode([7u8; 31]);
        let err = seal(&short, &SecretString::from("canary-7731")).unwrap_err();
        assert!(matches!(err, SealError::KeyLength { actual: 31 }), "{err}");
        assert!(!err.to_string().contains("canary-7731"));
        let long = STANDARD.encode([7u8; 33]);
        assert!(matches!(
            seal(&long, &SecretString::from("v")),
            Err(SealError::KeyLength { actual: 33 })
        ));
    }

    #[test]
    fn a_box_sealed_by_libsodium_opens_with_crypto_box() {
        let kat = kat();
        assert!(
            kat.made_with.contains("PyNaCl"),
            "vector provenance: {}",
            kat.made_with
        );
        let sk = kat_secret_key(&kat);
        assert_eq!(
            STANDARD.encode(sk.public_key().as_bytes()),
            kat.public_key_b64
        );
        let opened = open(&sk, &kat.ciphertext_b64);
        assert_eq!(opened, kat.message.as_bytes());
    }

    #[test]
    fn a_box_sealed_by_rotor_for_the_libsodium_key_opens_with_its_secret_key() {
        let kat = kat();
        let sk = kat_secret_key(&kat);
        let sealed = seal(
            &kat.public_key_b64,
            &SecretString::from(kat.message.as_str()),
        )
        .unwrap();
        assert_eq!(
            STANDARD.decode(&sealed).unwrap().len(),
            kat.message.len() + SEAL_OVERHEAD
        );
        assert_eq!(open(&sk, &sealed), kat.message.as_bytes());
    }
}
