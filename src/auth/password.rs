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
    tokio::task::spawn_blocking(move || hash_now(&password)).await?
}

/// Verifies a password against a stored PHC string. An unreadable hash never matches.
pub async fn verify(password: SecretString, stored: String) -> bool {
    tokio::task::spawn_blocking(move || verify_now(&password, &stored))
        .await
        .unwrap_or(false)
}

/// How long a request waits for a free hashing slot before it is told the service is busy.
pub const PERMIT_WAIT: Duration = Duration::from_secs(1);

/// All hashing slots stayed taken for [`PERMIT_WAIT`].
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("too many password hashes are running")]
pub struct Busy;

type Job = Box<dyn FnOnce() + Send>;

/// At most `auth.max_concurrent_hashes` hashes or verifications at once, each on one of that
/// many dedicated threads: the allocator keeps a freed 19 MiB block per thread, so a fixed set
/// of threads bounds resident memory where tokio's growing blocking pool would not. The
/// permit moves into the job, so a client that hangs up does not free its slot before the
/// memory is.
pub struct HashGate {
    permits: Arc<Semaphore>,
    jobs: std::sync::Mutex<std::sync::mpsc::Sender<Job>>,
}

impl HashGate {
    pub fn new(max_concurrent: usize) -> Self {
        let threads = max_concurrent.max(1);
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for i in 0..threads {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-hash-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start a password-hashing thread");
            }
        }
        Self {
            permits: Arc::new(Semaphore::new(threads)),
            jobs: std::sync::Mutex::new(jobs),
        }
    }

    /// Runs `work` on a hashing thread, holding `permit` until it is done.
    async fn run<T: Send + 'static>(
        &self,
        permit: OwnedSemaphorePermit,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _permit = permit;
            let _ = done.send(work());
        });
        self.jobs.lock().ok()?.send(job).ok()?;
        result.await.ok()
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
        Ok(self
            .run(permit, move || verify_now(&password, &stored))
            .await
            .unwrap_or(false))
    }

    pub async fn hash(&self, password: SecretString) -> Result<anyhow::Result<String>, Busy> {
        let permit = self.reserve().await?;
        Ok(self
            .run(permit, move || hash_now(&password))
            .await
            .unwrap_or_else(|| Err(anyhow::anyhow!("the hashing thread stopped"))))
    }
}

fn hash_now(password: &SecretString) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.expose_secret().as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
}

fn verify_now(password: &SecretString, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.expose_secret().as_bytes(), &parsed)
            .is_ok()
    })
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
