//! A tiny builder for statements assembled at run time: fixed SQL fragments plus numbered
//! placeholders (`$1`, `$2`, ...), every value bound, never interpolated.

use sqlx::any::{Any, AnyArguments};
use sqlx::query::Query;
use sqlx::AssertSqlSafe;

/// One bound value.
#[derive(Debug, Clone)]
pub enum Arg {
    Int(i64),
    Text(String),
    NullInt,
    NullText,
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Self::Text(v.to_string())
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}

impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Self::NullInt, Self::Int)
    }
}

impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        v.map_or(Self::NullText, Self::Text)
    }
}

impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Self::Int(i64::from(v))
    }
}

/// SQL text and its arguments, in placeholder order.
#[derive(Debug, Default, Clone)]
pub struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    pub fn new(fragment: &'static str) -> Self {
        Self {
            text: fragment.to_string(),
            args: Vec::new(),
        }
    }

    /// Append a fixed fragment (only `&'static str`: values never enter the text).
    pub fn push(&mut self, fragment: &'static str) -> &mut Self {
        self.text.push_str(fragment);
        self
    }

    /// Append ` <column> = $n` for one tenant, or a condition true for every row when `tenant`
    /// is `ALL_TENANTS` (an admin's listing across tenants).
    pub fn tenant_is(&mut self, column: &'static str, tenant: &str) -> &mut Self {
        self.push(" ").push(column);
        if tenant == super::ALL_TENANTS {
            self.push(" IS NOT NULL")
        } else {
            self.push(" = ").bind(tenant)
        }
    }

    /// Append a placeholder bound to `v`.
    pub fn bind(&mut self, v: impl Into<Arg>) -> &mut Self {
        self.args.push(v.into());
        self.text.push('$');
        self.text.push_str(&self.args.len().to_string());
        self
    }

    /// ` AND` the image (of table `images`, or of its alias `i` when `joined`) is live at
    /// `now`: not expired. The one place this predicate is written.
    pub fn live(&mut self, joined: bool, now: i64) -> &mut Self {
        self.push(if joined {
            " AND (i.expires_at IS NULL OR i.expires_at > "
        } else {
            " AND (expires_at IS NULL OR expires_at > "
        })
        .bind(now)
        .push(")")
    }

    /// Append `(p1, p2, ...)` bound to `values`.
    pub fn bind_list<T: Into<Arg> + Clone>(&mut self, values: &[T]) -> &mut Self {
        self.push("(");
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(v.clone());
        }
        self.push(")")
    }

    /// The statement, ready to run.
    pub fn query(&self) -> Query<'_, Any, AnyArguments> {
        let mut q = sqlx::query(AssertSqlSafe(self.text.clone()));
        for a in &self.args {
            q = match a {
                Arg::Int(v) => q.bind(*v),
                Arg::Text(v) => q.bind(v.as_str()),
                Arg::NullInt => q.bind(None::<i64>),
                Arg::NullText => q.bind(None::<String>),
            };
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        let mut s = Sql::new("SELECT 1 WHERE a = ");
        s.bind(1i64).push(" AND b IN ").bind_list(&["x", "y"]);
        assert_eq!(s.text, "SELECT 1 WHERE a = $1 AND b IN ($2, $3)");
        assert_eq!(s.args.len(), 3);
    }

    #[test]
    fn the_live_predicate() {
        let mut s = Sql::new("SELECT 1 FROM images WHERE a = ");
        s.bind(1i64).live(false, 7);
        assert_eq!(
            s.text,
            "SELECT 1 FROM images WHERE a = $1 AND (expires_at IS NULL OR expires_at > $2)"
        );
        let mut j = Sql::new(
            "SELECT 1 FROM image_tags t JOIN images i ON i.id = t.image_id WHERE t.tenant = ",
        );
        j.bind("t").live(true, 7);
        assert!(j
            .text
            .ends_with(" AND (i.expires_at IS NULL OR i.expires_at > $2)"));
    }
}
