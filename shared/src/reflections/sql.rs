//! A raw statement built up with placeholders for the connected backend (`$n` on
//! PostgreSQL, `?` on SQLite), for the few set-based queries the query builder
//! cannot express (a `VALUES` list as a common table expression).

use sea_orm::{DbBackend, Statement, Value};

pub(super) struct Sql {
    backend: DbBackend,
    text: String,
    values: Vec<Value>,
}

impl Sql {
    pub(super) fn new(backend: DbBackend) -> Self {
        Self { backend, text: String::new(), values: Vec::new() }
    }

    /// Appends SQL text.
    pub(super) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub(super) fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.values.push(value.into());
        match self.backend {
            DbBackend::Postgres => {
                let n = self.values.len();
                self.text.push_str(&format!("${n}"));
            }
            _ => self.text.push('?'),
        }
        self
    }

    /// Appends `(v1, v2, …)` for a tuple of values.
    pub(super) fn tuple(&mut self, values: impl IntoIterator<Item = Value>) -> &mut Self {
        self.push("(");
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(value);
        }
        self.push(")")
    }

    /// How many values are bound so far (the backends cap a statement's parameters).
    pub(super) fn bound(&self) -> usize {
        self.values.len()
    }

    pub(super) fn build(self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text, self.values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_backend() {
        for (backend, expected) in
            [(DbBackend::Postgres, "x IN ($1, $2) AND y = $3"), (DbBackend::Sqlite, "x IN (?, ?) AND y = ?")]
        {
            let mut sql = Sql::new(backend);
            sql.push("x IN ").tuple([1_i64.into(), 2_i64.into()]).push(" AND y = ").bind("z");
            assert_eq!(sql.bound(), 3);
            let statement = sql.build();
            assert_eq!(statement.sql, expected);
            assert_eq!(statement.values.map(|v| v.0.len()), Some(3));
        }
    }
}
