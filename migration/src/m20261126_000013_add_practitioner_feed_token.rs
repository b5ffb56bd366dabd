//! The secret token of each practitioner's calendar feed, stored only as a SHA-256 hash.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "idx_practitioners_feed_token_hash";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite cannot add a UNIQUE column, so the uniqueness is a separate index; NULLs
        // (practitioners without a feed) never collide in either database.
        manager
            .alter_table(
                Table::alter()
                    .table("practitioners")
                    .add_column(string_null("feed_token_hash"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table("practitioners")
                    .col("feed_token_hash")
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(INDEX).table("practitioners").to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("practitioners")
                    .drop_column("feed_token_hash")
                    .to_owned(),
            )
            .await
    }
}
