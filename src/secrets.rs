//! Keys the service keeps for itself. The enquiry IP hash is a keyed HMAC-SHA256, so a stored
//! hash cannot be reversed by hashing every address; the key is `privacy.ip_hash_key`, or,
//! when that is unset, one generated at first start and kept in the `app_secrets` table, so
//! later starts and other instances use the same.

use std::net::IpAddr;

use chrono::Utc;
use entity::app_secret;
use hmac::{KeyInit, Mac};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Set, sea_query::OnConflict};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;

use crate::config::PrivacySettings;

const IP_HASH_KEY: &str = "ip_hash_key";

pub struct IpHasher {
    key: SecretSlice<u8>,
}

impl IpHasher {
    pub fn new(key: Vec<u8>) -> Self {
        Self { key: key.into() }
    }

    /// The configured key, or a random one for a state that `startup` has not (yet) given
    /// the database's key.
    pub fn from_settings(privacy: &PrivacySettings) -> Self {
        match &privacy.ip_hash_key {
            Some(key) => Self::new(key.expose_secret().as_bytes().to_vec()),
            None => Self::new(random_key().into_bytes()),
        }
    }

    /// Hex HMAC-SHA256 of the client's address (of "" when there is none).
    pub fn hash(&self, ip: Option<IpAddr>) -> String {
        let text = ip
            .map(|ip| ip.to_canonical().to_string())
            .unwrap_or_default();
        let Ok(mut mac) = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(self.key.expose_secret())
        else {
            // HMAC takes keys of any length; this cannot happen.
            return String::new();
        };
        mac.update(text.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

fn random_key() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}

/// The hasher for this instance: from `privacy.ip_hash_key`, else the database's key,
/// generating and storing it the first time. Two instances starting at once agree: the
/// loser's insert does nothing and it reads the winner's key.
pub async fn ip_hasher(
    conn: &impl ConnectionTrait,
    privacy: &PrivacySettings,
) -> Result<IpHasher, DbErr> {
    if privacy.ip_hash_key.is_some() {
        return Ok(IpHasher::from_settings(privacy));
    }
    if let Some(row) = app_secret::Entity::find_by_id(IP_HASH_KEY)
        .one(conn)
        .await?
    {
        return Ok(IpHasher::new(row.value.into_bytes()));
    }
    app_secret::Entity::insert(app_secret::ActiveModel {
        name: Set(IP_HASH_KEY.to_string()),
        value: Set(random_key()),
        created_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::column(app_secret::Column::Name)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    let row = app_secret::Entity::find_by_id(IP_HASH_KEY)
        .one(conn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(IP_HASH_KEY.to_string()))?;
    tracing::info!("generated the key of enquiry IP hashes and kept it in the database");
    Ok(IpHasher::new(row.value.into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_keyed() {
        let ip: Option<IpAddr> = Some("192.0.2.1".parse().expect("ip"));
        let a = IpHasher::new(b"first key of sixteen".to_vec());
        let b = IpHasher::new(b"second key of sixteen".to_vec());
        assert_eq!(a.hash(ip), a.hash(ip));
        assert_ne!(a.hash(ip), b.hash(ip));
        assert_eq!(a.hash(ip).len(), 64);
        // Not the unkeyed digest of the address.
        use sha2::Digest;
        assert_ne!(a.hash(ip), hex::encode(Sha256::digest(b"192.0.2.1")));
    }
}
