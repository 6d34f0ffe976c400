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
    #[error("public key is a point of small order (libsodium refuses to seal with it)")]
    KeyLowOrder,
    #[error("public key id is empty, longer than {MAX_KEY_ID} characters, or holds characters that are not printable ASCII")]
    KeyId,
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

/// Longest key id rotor accepts (GitHub's are numeric strings of about 20 digits).
pub const MAX_KEY_ID: usize = 128;

/// Checks a public key as GitHub serves it, before anything depends on it: the id is
/// printable ASCII of a sane length (it is shown in logs and stored in the ledger), and the
/// key is standard base64 of exactly 32 bytes that is not a point of small order (what
/// libsodium's `crypto_box_seal` refuses).
pub fn check_public_key(key_id: &str, public_key_b64: &str) -> Result<(), SealError> {
    if key_id.is_empty()
        || key_id.len() > MAX_KEY_ID
        || !key_id.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(SealError::KeyId);
    }
    parse_public_key(public_key_b64).map(|_| ())
}

/// Decodes and checks a base64 X25519 public key.
fn parse_public_key(public_key_b64: &str) -> Result<PublicKey, SealError> {
    let bytes = STANDARD
        .decode(public_key_b64.trim())
        .map_err(SealError::KeyNotBase64)?;
    let array: [u8; PUBLIC_KEY_LEN] =
        bytes
            .as_slice()
            .try_into()
            .map_err(|_| SealError::KeyLength {
                actual: bytes.len(),
            })?;
    if has_small_order(array) {
        return Err(SealError::KeyLowOrder);
    }
    Ok(PublicKey::from(array))
}

/// Whether `u` (an X25519 u-coordinate, canonical or not) is a point of small order: a
/// clamped scalar (a multiple of the cofactor 8) takes it to the all-zero output, the case
/// in which libsodium's X25519 fails and a sealed box would be readable by anyone.
fn has_small_order(u: [u8; PUBLIC_KEY_LEN]) -> bool {
    // Any clamped scalar works; this one is fixed so the check is deterministic.
    let product = curve25519_dalek::montgomery::MontgomeryPoint(u).mul_clamped([0x5a; 32]);
    product.to_bytes().iter().all(|b| *b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto_box::SecretKey;

    #[test]
    fn a_short_key_or_an_escaped_key_id_was_accepted_and_cached() {
        let (_, good) = key_pair();
        assert!(check_public_key("3380204578043523366", &good).is_ok());
        // Three bytes, and an id with ANSI escapes: both refused.
        assert!(matches!(
            check_public_key("1", &STANDARD.encode([1u8, 2, 3])),
            Err(SealError::KeyLength { actual: 3 })
        ));
        for id in ["", "\u{1b}[31mred", "a b", &"9".repeat(MAX_KEY_ID + 1)] {
            assert!(
                matches!(check_public_key(id, &good), Err(SealError::KeyId)),
                "{id:?}"
            );
        }
        assert!(matches!(
            check_public_key("1", "not base64!"),
            Err(SealError::KeyNotBase64(_))
        ));
    }

    #[test]
    fn points_of_small_order_are_refused_as_libsodium_refuses_them() {
        // The all-zero point, u = 1, a point of order 8, and p - 1, p, p + 1 (non-canonical
        // encodings of small-order points), with the top bit set too.
        let mut p_minus_1 = [0xffu8; 32];
        p_minus_1[0] = 0xec;
        p_minus_1[31] = 0x7f;
        let mut p = p_minus_1;
        p[0] = 0xed;
        let mut p_plus_1 = p_minus_1;
        p_plus_1[0] = 0xee;
        let mut one = [0u8; 32];
        one[0] = 1;
        let order8: [u8; 32] = [
            0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f,
            0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16,
            0x5f, 0x49, 0xb8, 0x00,
        ];
        for point in [[0u8; 32], one, order8, p_minus_1, p, p_plus_1] {
            let mut high = point;
            high[31] |= 0x80;
            for candidate in [point, high] {
                let b64 = STANDARD.encode(candidate);
                assert!(
                    matches!(check_public_key("1", &b64), Err(SealError::KeyLowOrder)),
                    "{candidate:02x?}"
                );
                let err = seal(&b64, &SecretString::from("v")).unwrap_err();
                assert!(matches!(err, SealError::KeyLowOrder));
            }
        }
        for _ in 0..64 {
            let (_, good) = key_pair();
            assert!(check_public_key("1", &good).is_ok());
        }
    }

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
