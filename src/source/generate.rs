//! The generator: values drawn uniformly from a charset by the operating system's CSPRNG.

use crypto_box::aead::rand_core::RngCore;
use crypto_box::aead::OsRng;
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::policy::Charset;

/// Random bytes fetched from the OS per refill of the pool.
const POOL: usize = 512;

/// Generates a fresh value: `prefix` (if any) followed by `length` characters drawn
/// independently and uniformly from `charset`'s alphabet.
///
/// `length` counts only the random part: with `prefix: Some("tok_")` and `length: 40` the
/// value is 44 characters long. Each character comes from the operating system's CSPRNG
/// through rejection sampling, so every character of the alphabet is exactly equally likely
/// (no modulo bias, whatever the alphabet's size). Every buffer that held random bytes or the
/// value is wiped before it is freed; the only copy that survives is the returned secret.
///
/// # Panics
///
/// If the alphabet is empty. Validated policies never have one; `Sources::rotate` refuses
/// alphabets of fewer than two characters with an error before calling this.
pub fn generate(length: usize, charset: &Charset, prefix: Option<&str>) -> SecretString {
    let alphabet = charset.alphabet();
    assert!(
        !alphabet.is_empty(),
        "the generator needs a non-empty alphabet"
    );
    let prefix = prefix.unwrap_or("");
    let widest = alphabet.iter().map(|c| c.len_utf8()).max().unwrap_or(1);

    // Sized up front so that pushing never reallocates (a reallocation would leave an
    // unwiped copy behind).
    let mut value = Zeroizing::new(String::with_capacity(prefix.len() + length * widest));
    value.push_str(prefix);
    let mut sampler = Sampler::new(alphabet.len());
    for _ in 0..length {
        value.push(alphabet[sampler.next_index()]);
    }
    // Copies into an exactly sized buffer owned by the secret; `value` is wiped on drop.
    SecretString::from(value.as_str())
}

/// Uniform indexes in `0..n` from a pool of OS random bytes, by rejection sampling on `u32`
/// draws.
struct Sampler {
    n: u32,
    /// Draws at or above this are rejected: it is the largest multiple of `n` that fits in
    /// 2^32, so `draw % n` is uniform over the draws kept.
    limit: u64,
    pool: Zeroizing<[u8; POOL]>,
    used: usize,
}

impl Sampler {
    fn new(n: usize) -> Self {
        let n = u32::try_from(n).expect("an alphabet has fewer than 2^32 characters");
        Sampler {
            n,
            limit: acceptance_limit(n),
            pool: Zeroizing::new([0u8; POOL]),
            used: POOL,
        }
    }

    fn next_index(&mut self) -> usize {
        loop {
            if self.used + 4 > POOL {
                OsRng.fill_bytes(&mut self.pool[..]);
                self.used = 0;
            }
            let mut word = [0u8; 4];
            word.copy_from_slice(&self.pool[self.used..self.used + 4]);
            self.used += 4;
            let draw = u32::from_le_bytes(word);
            if let Some(index) = accept(draw, self.n, self.limit) {
                return index;
            }
        }
    }
}

/// The largest multiple of `n` not above 2^32.
fn acceptance_limit(n: u32) -> u64 {
    let range = 1u64 << 32;
    range - range % u64::from(n)
}

/// Maps a draw to an index, or rejects it when it falls in the incomplete last block.
fn accept(draw: u32, n: u32, limit: u64) -> Option<usize> {
    (u64::from(draw) < limit).then(|| (draw % n) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    const ALL: [Charset; 4] = [
        Charset::Alphanumeric,
        Charset::Hex,
        Charset::Base64Url,
        Charset::Printable,
    ];

    #[test]
    fn the_value_has_the_requested_length() {
        for charset in ALL {
            for length in [16, 40, 4096] {
                let value = generate(length, &charset, None);
                assert_eq!(value.expose_secret().chars().count(), length, "{charset:?}");
            }
        }
    }

    #[test]
    fn every_character_comes_from_the_charset() {
        for charset in ALL {
            let alphabet = charset.alphabet();
            let value = generate(2000, &charset, None);
            assert!(
                value.expose_secret().chars().all(|c| alphabet.contains(&c)),
                "{charset:?} produced a character outside its alphabet"
            );
        }
    }

    #[test]
    fn the_named_charsets_are_the_documented_alphabets() {
        let value = generate(4000, &Charset::Hex, None);
        assert!(value
            .expose_secret()
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        let value = generate(4000, &Charset::Alphanumeric, None);
        assert!(value
            .expose_secret()
            .chars()
            .all(|c| c.is_ascii_alphanumeric()));
        let value = generate(4000, &Charset::Base64Url, None);
        assert!(value
            .expose_secret()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        let value = generate(4000, &Charset::Printable, None);
        assert!(value.expose_secret().chars().all(|c| c.is_ascii_graphic()));
    }

    #[test]
    fn a_custom_alphabet_is_used_as_given_including_multibyte_characters() {
        let charset = Charset::Custom("ab€🔑".to_string());
        let value = generate(500, &charset, None);
        let text = value.expose_secret();
        assert_eq!(text.chars().count(), 500);
        assert!(text.chars().all(|c| "ab€🔑".contains(c)));
        for c in "ab€🔑".chars() {
            assert!(text.contains(c), "{c} never drawn in 500 draws from 4");
        }
    }

    #[test]
    fn the_prefix_comes_first_and_length_counts_only_the_random_part() {
        let value = generate(40, &Charset::Hex, Some("tok_"));
        let text = value.expose_secret();
        assert!(text.starts_with("tok_"));
        assert_eq!(text.len(), 44);
        assert!(text[4..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn two_values_differ() {
        let a = generate(32, &Charset::Alphanumeric, None);
        let b = generate(32, &Charset::Alphanumeric, None);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn draws_in_the_incomplete_last_block_are_rejected() {
        // 2^32 = 3 * 1431655765 + 1: exactly one draw (u32::MAX) must be rejected for n = 3.
        let limit = acceptance_limit(3);
        assert_eq!(limit, (1u64 << 32) - 1);
        assert_eq!(accept(u32::MAX, 3, limit), None);
        assert_eq!(
            accept(u32::MAX - 1, 3, limit),
            Some(((u32::MAX - 1) % 3) as usize)
        );
        assert_eq!(accept(0, 3, limit), Some(0));
        // A power of two divides 2^32: nothing is rejected.
        assert_eq!(acceptance_limit(16), 1u64 << 32);
        assert_eq!(accept(u32::MAX, 16, acceptance_limit(16)), Some(15));
        // 62 symbols: 2^32 % 62 = 4 draws rejected.
        assert_eq!(acceptance_limit(62), (1u64 << 32) - 4);
    }

    /// Pearson's chi-square statistic of `draws` characters from `charset` against the
    /// uniform distribution.
    fn chi_square(charset: &Charset, draws: usize) -> (f64, usize) {
        let alphabet = charset.alphabet();
        let value = generate(draws, charset, None);
        let mut counts = vec![0u64; alphabet.len()];
        for c in value.expose_secret().chars() {
            let i = alphabet.iter().position(|a| *a == c).expect("in alphabet");
            counts[i] += 1;
        }
        let expected = draws as f64 / alphabet.len() as f64;
        let stat = counts
            .iter()
            .map(|&o| (o as f64 - expected).powi(2) / expected)
            .sum();
        (stat, alphabet.len() - 1)
    }

    #[test]
    fn characters_are_drawn_uniformly() {
        // Bounds sit about 12 standard deviations above the mean of the chi-square
        // distribution (mean = df, sd = sqrt(2 df)): a fair generator never crosses them,
        // while a biased one lands far beyond: byte-modulo sampling of alphanumeric (the
        // first 8 symbols 25% likelier) scores about 660 here.
        for (charset, bound) in [(Charset::Hex, 80.0), (Charset::Alphanumeric, 200.0)] {
            let (stat, df) = chi_square(&charset, 100_000);
            assert!(
                stat < bound,
                "{charset:?}: chi-square {stat:.1} with {df} df exceeds {bound}"
            );
        }
        let (stat, df) = chi_square(&Charset::Custom("xyz".into()), 30_000);
        assert!(stat < 40.0, "3 symbols: chi-square {stat:.1} with {df} df");
    }
}
