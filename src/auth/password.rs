//! argon2id password hashing with the crate's defaults (OWASP: m=19 MiB, t=2, p=1), run on a
//! blocking thread so hashing never stalls the async runtime. Requests hash through a
//! [`HashGate`], so a flood of logins cannot run more than a bounded number at once (each one
//! needs 19 MiB of argon2 memory), and each of the gate's threads keeps one argon2 memory
//! buffer that it reuses while hashes keep coming and frees once it has been idle briefly, so
//! a flood does not allocate (and free) 19 MiB per request and a quiet service keeps none.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

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

/// How long a hashing thread keeps its buffer after its last hash. Under a login flood the
/// next hash follows within microseconds, so the buffers stay and nothing is reallocated;
/// after a sign-in or two the 19 MiB go back to the system instead of staying resident for
/// the life of the process.
pub const KEEP_IDLE: Duration = Duration::from_millis(250);

/// At most `auth.max_concurrent_hashes` hashes or verifications at once, each on one of that
/// many dedicated threads, each of which owns one [`Memory`] while it is busy. Allocating
/// argon2's 19 MiB per hash, as `Argon2::verify_password` does, made resident memory grow far
/// past the hashes running at once: once glibc sees a freed mmapped block of that size it
/// raises its mmap threshold, later 19 MiB blocks come from the malloc arenas, and freed ones
/// stay resident there, fragmented (479–637 MB under a login flood with four hashes at a
/// time). So a thread reuses its buffer while hashes keep coming and frees it only after
/// [`KEEP_IDLE`] without one (the process pins the allocator's mmap threshold at start, see
/// `crate::alloc`, so a freed buffer is unmapped). The permit moves into the job, so a client
/// that hangs up does not free its slot before the hash is done.
pub struct HashGate {
    permits: Arc<Semaphore>,
    queue: Arc<JobQueue>,
}

/// Jobs waiting for a hashing thread; `closed` once the gate is dropped, so its threads end.
#[derive(Default)]
struct JobQueue {
    jobs: std::sync::Mutex<(std::collections::VecDeque<Job>, bool)>,
    ready: std::sync::Condvar,
    /// Threads holding a buffer now.
    held: Arc<AtomicUsize>,
}

impl JobQueue {
    /// The next job, releasing `memory` once it has waited [`KEEP_IDLE`] without one; `None`
    /// when the gate is gone.
    fn next(&self, memory: &mut Memory) -> Option<Job> {
        let mut guard = self.jobs.lock().ok()?;
        loop {
            let (jobs, closed) = &mut *guard;
            if let Some(job) = jobs.pop_front() {
                return Some(job);
            }
            if *closed {
                return None;
            }
            guard = if memory.is_held() {
                let (guard, waited) = self.ready.wait_timeout(guard, KEEP_IDLE).ok()?;
                if waited.timed_out() && guard.0.is_empty() {
                    memory.release();
                }
                guard
            } else {
                self.ready.wait(guard).ok()?
            };
        }
    }

    fn push(&self, job: Job) -> Option<()> {
        self.jobs.lock().ok()?.0.push_back(job);
        self.ready.notify_one();
        Some(())
    }
}

impl HashGate {
    pub fn new(max_concurrent: usize) -> Self {
        let threads = max_concurrent.max(1);
        let queue = Arc::new(JobQueue::default());
        for i in 0..threads {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-hash-{i}"))
                .spawn(move || {
                    let mut memory = Memory {
                        held: Some(queue.held.clone()),
                        ..Memory::default()
                    };
                    while let Some(job) = queue.next(&mut memory) {
                        job(&mut memory);
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start a password-hashing thread");
            }
        }
        Self {
            permits: Arc::new(Semaphore::new(threads)),
            queue,
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
        self.queue.push(job)?;
        result.await.ok()
    }

    /// How many of the gate's threads hold an argon2 buffer now.
    pub fn buffers_held(&self) -> usize {
        self.queue.held.load(Ordering::Relaxed)
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

impl Drop for HashGate {
    /// Lets the gate's threads finish the jobs queued and end.
    fn drop(&mut self) {
        if let Ok(mut jobs) = self.queue.jobs.lock() {
            jobs.1 = true;
        }
        self.queue.ready.notify_all();
    }
}

/// One argon2 memory buffer, allocated on first use with the default parameters' size (19 MiB)
/// and reused for every hash until [`Memory::release`]. A stored hash with a larger memory cost
/// gets a buffer of its own for that one verification, so the kept one never grows.
#[derive(Default)]
pub struct Memory {
    blocks: Vec<Block>,
    /// Counts this buffer while it is allocated (a gate's [`HashGate::buffers_held`]).
    held: Option<Arc<AtomicUsize>>,
}

impl Memory {
    /// Whether the buffer is allocated now.
    pub fn is_held(&self) -> bool {
        !self.blocks.is_empty()
    }

    /// Gives the buffer back; the next hash allocates it again.
    pub fn release(&mut self) {
        if self.is_held()
            && let Some(held) = &self.held
        {
            held.fetch_sub(1, Ordering::Relaxed);
        }
        self.blocks = Vec::new();
    }

    fn with_blocks<T>(&mut self, params: &Params, f: impl FnOnce(&mut [Block]) -> T) -> T {
        let needed = params.block_count();
        let kept = Params::DEFAULT.block_count();
        if needed > kept {
            let mut own = vec![Block::new(); needed];
            return f(&mut own);
        }
        if self.blocks.len() < kept {
            if !self.is_held()
                && let Some(held) = &self.held
            {
                held.fetch_add(1, Ordering::Relaxed);
            }
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

    /// A thread keeps its buffer between hashes that follow closely and gives it back once
    /// it has been idle for `KEEP_IDLE`, so a quiet service holds no argon2 memory.
    #[tokio::test]
    async fn the_buffer_is_kept_while_hashes_follow_and_freed_when_idle() {
        let gate = HashGate::new(1);
        assert_eq!(gate.buffers_held(), 0);
        for _ in 0..3 {
            assert_eq!(
                gate.verify(SecretString::from("whatever"), DUMMY_HASH.into())
                    .await
                    .ok(),
                Some(false)
            );
            assert_eq!(gate.buffers_held(), 1);
        }
        let deadline = std::time::Instant::now() + KEEP_IDLE * 20;
        while gate.buffers_held() > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(KEEP_IDLE / 5).await;
        }
        assert_eq!(gate.buffers_held(), 0);
        // And it comes back for the next hash.
        assert!(
            gate.hash(SecretString::from("another password"))
                .await
                .is_ok()
        );
        assert_eq!(gate.buffers_held(), 1);
    }

    #[test]
    fn generated_passwords_meet_the_policy() {
        let p = generate();
        assert!(check_policy("password", &p).is_ok());
        assert_ne!(p, generate());
    }
}
