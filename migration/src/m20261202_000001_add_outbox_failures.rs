//! Failed tries of an outgoing email, whatever their cause: they drive its backoff, while
//! `attempts` counts only the tries the mail server refused (toward `max_attempts`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("outbox_messages")
                    .add_column(integer("failures").default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("outbox_messages")
                    .drop_column("failures")
                    .to_owned(),
            )
            .await
    }
}
