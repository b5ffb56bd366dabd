//! `?page=&per_page=` parameters and the `{"items","page","per_page","total"}` envelope.

use poem_openapi::{
    Object,
    types::{ParseFromJSON, ToJSON, Type},
};

use crate::domain::FieldError;

pub const MAX_PER_PAGE: u64 = 100;
pub const DEFAULT_PER_PAGE: u64 = 20;

/// A validated page request (page ≥ 1, 1 ≤ per_page ≤ 100).
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub page: u64,
    pub per_page: u64,
}

impl PageRequest {
    pub fn parse(page: Option<u64>, per_page: Option<u64>) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let page = page.unwrap_or(1);
        let per_page = per_page.unwrap_or(DEFAULT_PER_PAGE);
        if page == 0 {
            errors.push(FieldError::new("page", "must be at least 1"));
        }
        if per_page == 0 || per_page > MAX_PER_PAGE {
            errors.push(FieldError::new(
                "per_page",
                format!("must be between 1 and {MAX_PER_PAGE}"),
            ));
        }
        if errors.is_empty() {
            Ok(Self { page, per_page })
        } else {
            Err(errors)
        }
    }

    /// Cuts one page out of an in-memory list (small lists only).
    pub fn slice<T>(&self, items: Vec<T>) -> Page<T>
    where
        T: ParseFromJSON + ToJSON + Type + Send + Sync,
    {
        let total = items.len() as u64;
        let start =
            usize::try_from((self.page - 1).saturating_mul(self.per_page)).unwrap_or(usize::MAX);
        let items = items
            .into_iter()
            .skip(start)
            .take(self.per_page as usize)
            .collect();
        self.wrap(items, total)
    }

    pub fn wrap<T>(&self, items: Vec<T>, total: u64) -> Page<T>
    where
        T: ParseFromJSON + ToJSON + Type + Send + Sync,
    {
        Page {
            items,
            page: self.page,
            per_page: self.per_page,
            total,
        }
    }
}

/// One page of a list.
#[derive(Debug, Object)]
pub struct Page<T: ParseFromJSON + ToJSON + Type + Send + Sync> {
    pub items: Vec<T>,
    pub page: u64,
    pub per_page: u64,
    pub total: u64,
}
