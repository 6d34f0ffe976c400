//! GitHub webhooks, the pure part: checking a delivery's signature, reading its event,
//! and what rotor does about it (`Work`). The daemon's receiver (`daemon/webhook.rs`)
//! calls these before anything else happens; `focus` carries the work out.
//!
//! A delivery is acted on only when `X-Hub-Signature-256` is the HMAC-SHA256 of the raw
//! body with the configured secret, compared in constant time. The SHA-1 `X-Hub-Signature`
//! alone is not enough.

mod event;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub use event::{Event, RepoRef, Work};

/// GitHub does not send payloads over 25 MB.
pub const MAX_BODY: usize = 25 * 1024 * 1024;

/// Why a delivery was refused. Never carries the body or the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `X-Hub-Signature-256` (a SHA-1 `X-Hub-Signature` alone counts as none).
    Unsigned,
    /// The header is not `sha256=` and 64 hex digits.
    Malformed,
    /// The signature does not match the body: a wrong secret or a changed body.
    Mismatch,
    /// The body is larger than GitHub ever sends.
    TooLarge,
}

impl Refusal {
    /// The label used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Unsigned => "unsigned",
            Refusal::Malformed => "malformed_signature",
            Refusal::Mismatch => "bad_signature",
            Refusal::TooLarge => "too_large",
        }
    }
}

/// Checks `signature` (the `X-Hub-Signature-256` header) against `body` with `secret`.
pub fn verify(secret: &[u8], body: &[u8], signature: Option<&str>) -> Result<(), Refusal> {
    if body.len() > MAX_BODY {
        return Err(Refusal::TooLarge);
    }
    let signature = signature.ok_or(Refusal::Unsigned)?;
    let hex = signature
        .trim()
        .strip_prefix("sha256=")
        .ok_or(Refusal::Malformed)?;
    let expected = decode_hex(hex).ok_or(Refusal::Malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| Refusal::Mismatch)?;
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&expected).map_err(|_| Refusal::Mismatch)
}

/// `sha256=` and the hex HMAC of `body` with `secret`, as GitHub signs (for the emulator's
/// deliveries and tests).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn decode_hex(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// Deliveries already seen, by `(X-GitHub-Delivery, X-GitHub-Hook-ID)`, for `window`:
/// GitHub redelivers a delivery with the same GUID, and one event reaches every hook with
/// the same GUID, hence the pair.
pub struct Dedupe {
    window: Duration,
    seen: HashMap<(String, String), Instant>,
    order: VecDeque<((String, String), Instant)>,
    /// At most this many pairs are remembered (the oldest go first).
    capacity: usize,
}

impl Dedupe {
    pub fn new(window: Duration, capacity: usize) -> Dedupe {
        Dedupe {
            window,
            seen: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Records the pair; `false` when it was seen within the window (a redelivery).
    pub fn first_time(&mut self, delivery: &str, hook: &str, now: Instant) -> bool {
        while let Some((key, at)) = self.order.front() {
            if now.duration_since(*at) <= self.window && self.order.len() < self.capacity {
                break;
            }
            if self.seen.get(key) == Some(at) {
                self.seen.remove(key);
            }
            self.order.pop_front();
        }
        let key = (delivery.to_string(), hook.to_string());
        if self
            .seen
            .get(&key)
            .is_some_and(|at| now.duration_since(*at) <= self.window)
        {
            return false;
        }
        self.seen.insert(key.clone(), now);
        self.order.push_back((key, now));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn githubs_test_vector_verifies() {
        let secret = b"It's a Secret to Everybody";
        let body = b"Hello, World!";
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign(secret, body), header);
        assert_eq!(verify(secret, body, Some(header)), Ok(()));
    }

    #[test]
    fn forged_deliveries_are_refused() {
        let secret = b"It's a Secret to Everybody";
        let body = b"Hello, World!";
        let good = sign(secret, body);
        assert_eq!(verify(secret, body, None), Err(Refusal::Unsigned));
        assert_eq!(
            verify(b"another secret", body, Some(&good)),
            Err(Refusal::Mismatch)
        );
        assert_eq!(
            verify(secret, b"Hello, World?", Some(&good)),
            Err(Refusal::Mismatch)
        );
        assert_eq!(
            verify(
                secret,
                body,
                Some("sha1=0123456789abcdef0123456789abcdef01234567")
            ),
            Err(Refusal::Malformed)
        );
        assert_eq!(
            verify(secret, body, Some("sha256=zz")),
            Err(Refusal::Malformed)
        );
        let big = vec![b'x'; MAX_BODY + 1];
        assert_eq!(
            verify(secret, &big, Some(&sign(secret, &big))),
            Err(Refusal::TooLarge)
        );
    }

    #[test]
    fn a_redelivery_within_the_window_is_seen_once() {
        let mut d = Dedupe::new(Duration::from_secs(60), 100);
        let t0 = Instant::now();
        assert!(d.first_time("guid-1", "hook-1", t0));
        assert!(!d.first_time("guid-1", "hook-1", t0 + Duration::from_secs(5)));
        // The same event to another hook is another delivery.
        assert!(d.first_time("guid-1", "hook-2", t0));
        // After the window it is new again.
        assert!(d.first_time("guid-1", "hook-1", t0 + Duration::from_secs(120)));
    }
}
