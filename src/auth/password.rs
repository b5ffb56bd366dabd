//! argon2id password hashing with the crate's defaults (OWASP: m=19 MiB, t=2, p=1), run on a
//! blocking thread so hashing never stalls the async runtime. Requests hash through a
//! [`HashGate`], so a flood of logins cannot run more than a bounded number at once (each one
//! holds 19 MiB).

use std::{sync::Arc, time::Duration};

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::domain::FieldError;

pub const MIN_LEN: usize = 12;
pub const MAX_LEN: usize = 128;

/// Checks a new password against the policy: 12–128 characters.
pub fn check_policy(field: &str, password: &str) -> Result<(), FieldError> {
    let len = password.chars().count();
    if !(MIN_LEN..=MAX_LEN).contains(&len) {
        return Err(FieldError::new(
            field,
            format!("must be {MIN_LEN} to {MAX_LEN} characters"),
        ));
    }
    Ok(())
}

/// Hashes a password to a PHC string.
pub async fn hash(password: SecretString) -> anyhow::Result<String> {
    hash_holding(None, password).await
}

/// Verifies a password against a stored PHC string. An unreadable hash never matches.
pub async fn verify(password: SecretString, stored: String) -> bool {
    verify_holding(None, password, stored).await
}

/// How long a request waits for a free hashing slot before it is told the service is busy.
pub const PERMIT_WAIT: Duration = Duration::from_secs(1);

/// All hashing slots stayed taken for [`PERMIT_WAIT`].
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("too many password hashes are running")]
pub struct Busy;

/// At most `auth.max_concurrent_hashes` hashes or verifications at once. The permit moves
/// into the blocking task, so a client that hangs up does not free its slot before the
/// memory is.
pub struct HashGate {
    permits: Arc<Semaphore>,
}

impl HashGate {
    pub fn new(max_concurrent: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
        }
    }

    /// A hashing slot, waiting at most [`PERMIT_WAIT`] for one.
    pub async fn reserve(&self) -> Result<OwnedSemaphorePermit, Busy> {
        tokio::time::timeout(PERMIT_WAIT, self.permits.clone().acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or(Busy)
    }

    pub async fn verify(&self, password: SecretString, stored: String) -> Result<bool, Busy> {
        let permit = self.reserve().await?;
        Ok(verify_holding(Some(permit), password, stored).await)
    }

    pub async fn hash(&self, password: SecretString) -> Result<anyhow::Result<String>, Busy> {
        let permit = self.reserve().await?;
        Ok(hash_holding(Some(permit), password).await)
    }
}

async fn hash_holding(
    permit: Option<OwnedSemaphorePermit>,
    password: SecretString,
) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        Argon2::default()
            .hash_password(password.expose_secret().as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
    })
    .await?
}

async fn verify_holding(
    permit: Option<OwnedSemaphorePermit>,
    password: SecretString,
    stored: String,
) -> bool {
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        PasswordHash::new(&stored).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// A hash to verify against when the account does not exist, so that a login for an unknown
/// email takes as long as one for a known email.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2RvbKk8S8MRGpLh6VaD0z1TXZE5Bx9Yb6Fd7nG7G8jU";

/// A random password for generated accounts: 20 characters from an unambiguous alphabet.
pub fn generate() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    rand::fill(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_only_its_password() {
        let stored = hash(SecretString::from("a long enough password"))
            .await
            .expect("hash");
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify(SecretString::from("a long enough password"), stored.clone()).await);
        assert!(!verify(SecretString::from("a wrong password!!"), stored).await);
        assert!(!verify(SecretString::from("x"), "not a hash".into()).await);
    }

    #[tokio::test]
    async fn the_gate_answers_busy_when_every_slot_stays_taken() {
        let gate = HashGate::new(1);
        let held = gate.reserve().await.expect("a free slot");
        let started = std::time::Instant::now();
        assert!(
            gate.verify(SecretString::from("whatever"), DUMMY_HASH.into())
                .await
                .is_err()
        );
        assert!(started.elapsed() >= PERMIT_WAIT);
        drop(held);
        assert_eq!(
            gate.verify(SecretString::from("whatever"), DUMMY_HASH.into())
                .await
                .ok(),
            Some(false)
        );
    }

    #[test]
    fn generated_passwords_meet_the_policy() {
        let p = generate();
        assert!(check_policy("password", &p).is_ok());
        assert_ne!(p, generate());
    }
}
