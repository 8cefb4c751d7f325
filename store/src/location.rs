//! Where reports go, as `--db` (or `OTAVAN_DB`) names it: a SQLite file,
//! or a PostgreSQL address.

use std::convert::Infallible;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::postgres::redact;

/// The report store a server opens.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// The van's own SQLite file.
    Sqlite(PathBuf),
    /// The fleet database shared by every van and the office: a
    /// `postgres://` or `postgresql://` address, password included.
    Postgres(String),
}

impl StoreLocation {
    /// Reads a `--db` value: an address starting `postgres://` or
    /// `postgresql://` is PostgreSQL, anything else a file name.
    pub fn parse(db: &str) -> StoreLocation {
        if db.starts_with("postgres://") || db.starts_with("postgresql://") {
            StoreLocation::Postgres(db.to_owned())
        } else {
            StoreLocation::Sqlite(PathBuf::from(db))
        }
    }
}

impl FromStr for StoreLocation {
    type Err = Infallible;

    /// As [`StoreLocation::parse`]: every text names some store.
    fn from_str(db: &str) -> Result<StoreLocation, Infallible> {
        Ok(StoreLocation::parse(db))
    }
}

/// Without the password, so a logged configuration never shows it.
impl fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            StoreLocation::Postgres(url) => f.debug_tuple("Postgres").field(&redact(url)).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_postgres_and_the_rest_files() {
        for url in ["postgres://u@h/db", "postgresql://u@h/db"] {
            assert_eq!(
                StoreLocation::parse(url),
                StoreLocation::Postgres(url.to_owned())
            );
        }
        for file in ["otavan.db", "postgres.db", "./postgres://x", "mysql://h/db"] {
            assert_eq!(file.parse(), Ok(StoreLocation::Sqlite(PathBuf::from(file))));
        }
        let secret = StoreLocation::parse("postgres://otavan:secret@db.example/fleet");
        let shown = format!("{secret:?}");
        assert!(
            !shown.contains("secret") && shown.contains("otavan:***@"),
            "{shown}"
        );
    }
}
