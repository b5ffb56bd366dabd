//! argon2id password hashing with the crate's defaults (OWASP: m=19 MiB, t=2, p=1), run on a
//! blocking thread so hashing never stalls the async runtime. Requests hash through a
//! [`HashGate`], so a flood of logins cannot run more than a bounded number at once (each one
//! needs 19 MiB of argon2 memory), and each of the gate's threads keeps one argon2 memory
//! buffer that it reuses for every hash, so no request allocates (and frees) 19 MiB.

use std::{sync::Arc, time::Duration};

use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::{
        PasswordHasher, PasswordVerifier,
        phc::{Output, ParamsString, PasswordHash, Salt},
    },
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

type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// At most `auth.max_concurrent_hashes` hashes or verifications at once, each on one of that
/// many dedicated threads, each of which owns one [`Memory`] for the life of the process.
/// Allocating argon2's 19 MiB per hash, as `Argon2::verify_password` does, made resident
/// memory grow far past the hashes running at once: once glibc sees a freed mmapped block of
/// that size it raises its mmap threshold, later 19 MiB blocks come from the malloc arenas,
/// and freed ones stay resident there, fragmented (479–637 MB under a login flood with four
/// hashes at a time). The permit moves into the job, so a client that hangs up does not free
/// its slot before the hash is done.
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
                    let mut memory = Memory::default();
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&mut memory),
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
        work: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Option<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |memory: &mut Memory| {
            let _permit = permit;
            let _ = done.send(work(memory));
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
            .run(permit, move |memory| memory.verify(&password, &stored))
            .await
            .unwrap_or(false))
    }

    pub async fn hash(&self, password: SecretString) -> Result<anyhow::Result<String>, Busy> {
        let permit = self.reserve().await?;
        Ok(self
            .run(permit, move |memory| memory.hash(&password))
            .await
            .unwrap_or_else(|| Err(anyhow::anyhow!("the hashing thread stopped"))))
    }
}

/// One argon2 memory buffer, allocated on first use with the default parameters' size (19 MiB)
/// and reused for every hash after it. A stored hash with a larger memory cost gets a buffer of
/// its own for that one verification, so the kept one never grows.
#[derive(Default)]
pub struct Memory {
    blocks: Vec<Block>,
}

impl Memory {
    fn with_blocks<T>(&mut self, params: &Params, f: impl FnOnce(&mut [Block]) -> T) -> T {
        let needed = params.block_count();
        let kept = Params::DEFAULT.block_count();
        if needed > kept {
            let mut own = vec![Block::new(); needed];
            return f(&mut own);
        }
        if self.blocks.len() < kept {
            self.blocks = vec![Block::new(); kept];
        }
        f(&mut self.blocks[..needed])
    }

    /// Hashes a password with the default parameters and a fresh salt to a PHC string.
    pub fn hash(&mut self, password: &SecretString) -> anyhow::Result<String> {
        let params = Params::DEFAULT;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let mut salt = [0u8; argon2::RECOMMENDED_SALT_LEN];
        rand::fill(&mut salt);
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        self.with_blocks(&params, |blocks| {
            argon2.hash_password_into_with_memory(
                password.expose_secret().as_bytes(),
                &salt,
                &mut out,
                blocks,
            )
        })
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params)
                .map_err(|e| anyhow::anyhow!("hashing password: {e}"))?,
            salt: Some(Salt::new(&salt).map_err(|e| anyhow::anyhow!("hashing password: {e}"))?),
            hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("hashing password: {e}"))?),
        };
        Ok(phc.to_string())
    }

    /// Verifies a password against a stored PHC string the way `Argon2::verify_password` does
    /// (the hash's own algorithm, version, parameters and salt; the output compared in constant
    /// time), but computing into this buffer. An unreadable hash never matches.
    pub fn verify(&mut self, password: &SecretString, stored: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
            return false;
        };
        let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
            return false;
        };
        let version = match parsed.version.map(Version::try_from).transpose() {
            Ok(v) => v.unwrap_or_default(),
            Err(_) => return false,
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return false;
        };
        let mut buffer = [0u8; Output::MAX_LENGTH];
        let Some(out) = buffer.get_mut(..expected.len()) else {
            return false;
        };
        let argon2 = Argon2::new(algorithm, version, params.clone());
        let computed = self.with_blocks(&params, |blocks| {
            argon2.hash_password_into_with_memory(
                password.expose_secret().as_bytes(),
                salt,
                out,
                blocks,
            )
        });
        // `Output`'s equality is constant-time.
        computed.is_ok() && Output::new(out).is_ok_and(|computed| &computed == expected)
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

    /// The buffer-based verification answers as `Argon2::verify_password` does, for the
    /// default parameters and for hashes made with others (including a memory cost above the
    /// kept buffer's), with one buffer reused across all of them.
    #[test]
    fn buffer_verification_agrees_with_argon2() {
        let right = "the right password";
        let wrong = "the wrong password";
        let other = |algorithm, m, t, p, len| {
            let params = Params::new(m, t, p, Some(len)).expect("params");
            Argon2::new(algorithm, Version::V0x13, params)
                .hash_password(right.as_bytes())
                .expect("hash")
                .to_string()
        };
        let hashes = [
            Argon2::default()
                .hash_password(right.as_bytes())
                .expect("hash")
                .to_string(),
            other(Algorithm::Argon2id, 8 * 1024, 3, 2, 32),
            other(Algorithm::Argon2i, 1024, 2, 1, 64),
            other(Algorithm::Argon2id, Params::DEFAULT_M_COST + 1024, 1, 1, 32),
        ];
        let mut memory = Memory::default();
        for stored in &hashes {
            for (password, expected) in [(right, true), (wrong, false)] {
                let by_argon2 = Argon2::default()
                    .verify_password(
                        password.as_bytes(),
                        &PasswordHash::new(stored).expect("parses"),
                    )
                    .is_ok();
                assert_eq!(by_argon2, expected, "{stored}");
                assert_eq!(
                    memory.verify(&SecretString::from(password), stored),
                    expected,
                    "{stored}"
                );
            }
        }
        assert!(!memory.verify(&SecretString::from(right), DUMMY_HASH));
        assert!(!memory.verify(&SecretString::from(right), "not a hash"));
        assert_eq!(memory.blocks.len(), Params::DEFAULT.block_count());
    }

    /// A hash made in a gate's buffer is a standard PHC argon2id string that the argon2 crate
    /// verifies.
    #[tokio::test]
    async fn a_gate_hash_verifies_with_argon2() {
        let gate = HashGate::new(1);
        let stored = gate
            .hash(SecretString::from("a long enough password"))
            .await
            .expect("a free slot")
            .expect("hash");
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        let parsed = PasswordHash::new(&stored).expect("parses");
        assert!(
            Argon2::default()
                .verify_password(b"a long enough password", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"another password!!", &parsed)
                .is_err()
        );
        assert_eq!(
            gate.verify(SecretString::from("a long enough password"), stored)
                .await
                .ok(),
            Some(true)
        );
    }

    #[test]
    fn generated_passwords_meet_the_policy() {
        let p = generate();
        assert!(check_policy("password", &p).is_ok());
        assert_ne!(p, generate());
    }
}
