//! Failed logins are counted in each instance's memory per submitted address (never in the
//! database), so the per-account counter and lock go.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for column in ["failed_logins", "locked_until"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("staff_users")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("staff_users")
                    .add_column(integer("failed_logins").default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("staff_users")
                    .add_column(timestamp_with_time_zone_null("locked_until"))
                    .to_owned(),
            )
            .await
    }
}
