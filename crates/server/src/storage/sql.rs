//! One SQL interface over the two backends: what modules write their stores against, so
//! the same code runs on the embedded SQLite database and on PostgreSQL.
//!
//! A store runs a closure on a [`Conn`] ([`Database::run`](super::Database::run)); the
//! closure executes statements with [`params!`](crate::params) and reads [`Row`]s. The SQL is
//! written once, in the subset both engines share:
//! - placeholders are `?1`, `?2`… (rewritten to `$1`, `$2`… for PostgreSQL);
//! - upserts use `INSERT … ON CONFLICT (…) DO UPDATE` or `DO NOTHING`, not `INSERT OR …`;
//! - new rows' ids come from [`Conn::insert_id`] (SQLite's last row id, `RETURNING id` on PostgreSQL);
//! - a sum is cast (`CAST(SUM(x) AS BIGINT)`), since PostgreSQL sums integers as `NUMERIC`.
//!
//! Where the engines differ (the tables' definitions, mostly), a store asks
//! [`Conn::dialect`], and a module's schema lists its migrations for each
//! ([`ModuleSchema`](super::ModuleSchema)).
//!
//! Values cross as [`Value`]: integers, reals, text, bytes or null. On PostgreSQL an integer
//! binds to whichever integer (or boolean) type the statement expects, so `BIGINT`,
//! `INTEGER` and `SMALLINT` columns all take an `i64`.

use std::collections::HashMap;
use std::fmt;

use super::{StorageError, StorageResult};

/// Which engine a connection speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The embedded SQLite database.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// One value, as it crosses to or from the database.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// SQL NULL.
    Null,
    /// An integer (booleans are 0 and 1).
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(&'a str),
    /// Bytes.
    Blob(&'a [u8]),
}

impl Value<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Int(_) => "an integer",
            Value::Real(_) => "a real",
            Value::Text(_) => "text",
            Value::Blob(_) => "bytes",
        }
    }
}

/// A statement's parameter: anything that gives a [`Value`].
pub trait Param: Sync {
    /// The value bound.
    fn value(&self) -> Value<'_>;
}

macro_rules! int_params {
    ($($t:ty),*) => {$(
        impl Param for $t {
            fn value(&self) -> Value<'_> {
                Value::Int(i64::from(*self))
            }
        }
    )*};
}
int_params!(i8, i16, i32, i64, u8, u16, u32, bool);

impl Param for f64 {
    fn value(&self) -> Value<'_> {
        Value::Real(*self)
    }
}
impl Param for str {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}
impl Param for String {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}
impl Param for [u8] {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}
impl Param for Vec<u8> {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}
impl<T: Param + ?Sized> Param for &T {
    fn value(&self) -> Value<'_> {
        (**self).value()
    }
}
impl<T: Param> Param for Option<T> {
    fn value(&self) -> Value<'_> {
        match self {
            Some(v) => v.value(),
            None => Value::Null,
        }
    }
}
impl Param for Value<'_> {
    fn value(&self) -> Value<'_> {
        *self
    }
}

/// An owned value, for parameters built at run time (a list of filters, say).
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedValue {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
}

impl Param for OwnedValue {
    fn value(&self) -> Value<'_> {
        match self {
            OwnedValue::Null => Value::Null,
            OwnedValue::Int(i) => Value::Int(*i),
            OwnedValue::Text(s) => Value::Text(s),
        }
    }
}

/// The parameters of one statement, in order: `params![a, b]`.
#[macro_export]
macro_rules! params {
    () => { &[] as &[&dyn $crate::storage::sql::Param] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::storage::sql::Param),+] as &[&dyn $crate::storage::sql::Param] };
}

/// A type read out of a column.
pub trait FromValue: Sized {
    /// Converts, or says why not.
    fn from_value(v: Value<'_>) -> Result<Self, String>;
}

fn mismatch<T>(want: &str, v: Value<'_>) -> Result<T, String> {
    Err(format!("expected {want}, found {}", v.kind()))
}

macro_rules! int_columns {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: Value<'_>) -> Result<Self, String> {
                match v {
                    Value::Int(i) => <$t>::try_from(i)
                        .map_err(|_| format!("{i} is out of range for {}", stringify!($t))),
                    other => mismatch("an integer", other),
                }
            }
        }
    )*};
}
int_columns!(i8, i16, i32, i64, u8, u16, u32, u64, usize);

impl FromValue for bool {
    fn from_value(v: Value<'_>) -> Result<Self, String> {
        match v {
            Value::Int(i) => Ok(i != 0),
            other => mismatch("an integer", other),
        }
    }
}
impl FromValue for f64 {
    fn from_value(v: Value<'_>) -> Result<Self, String> {
        match v {
            Value::Real(f) => Ok(f),
            Value::Int(i) => Ok(i as f64),
            other => mismatch("a number", other),
        }
    }
}
impl FromValue for String {
    fn from_value(v: Value<'_>) -> Result<Self, String> {
        match v {
            Value::Text(s) => Ok(s.to_owned()),
            other => mismatch("text", other),
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(v: Value<'_>) -> Result<Self, String> {
        match v {
            Value::Blob(b) => Ok(b.to_vec()),
            Value::Text(s) => Ok(s.as_bytes().to_vec()),
            other => mismatch("bytes", other),
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: Value<'_>) -> Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// One row of a result.
pub struct Row<'a> {
    inner: RowInner<'a>,
}

enum RowInner<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Postgres(&'a postgres::Row),
}

impl Row<'_> {
    /// The value of column `i` (from 0).
    pub fn get<T: FromValue>(&self, i: usize) -> StorageResult<T> {
        let v = match &self.inner {
            RowInner::Sqlite(r) => sqlite_value(r.get_ref(i)?),
            RowInner::Postgres(r) => r.try_get::<_, PgValue<'_>>(i)?.0,
        };
        T::from_value(v).map_err(|e| StorageError::backend(format!("column {i}: {e}")))
    }
}

fn sqlite_value(v: rusqlite::types::ValueRef<'_>) -> Value<'_> {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Real(f),
        // SQLite text is UTF-8 unless something wrote it otherwise; such text reads as bytes.
        ValueRef::Text(t) => match std::str::from_utf8(t) {
            Ok(s) => Value::Text(s),
            Err(_) => Value::Blob(t),
        },
        ValueRef::Blob(b) => Value::Blob(b),
    }
}

/// A parameter as rusqlite binds it.
struct SqliteParam<'a>(&'a dyn Param);

impl rusqlite::ToSql for SqliteParam<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self.0.value() {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(i),
            Value::Real(f) => ValueRef::Real(f),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// A value as the PostgreSQL driver sees it, converted to the type the statement expects.
#[derive(Debug)]
struct PgValue<'a>(Value<'a>);

impl postgres::types::ToSql for PgValue<'_> {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::{IsNull, Type};
        let wrong = || -> Box<dyn std::error::Error + Sync + Send> {
            format!("{} cannot be bound to a {ty} parameter", self.0.kind()).into()
        };
        match self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::BOOL => (i != 0).to_sql(ty, out),
                Type::FLOAT8 => (i as f64).to_sql(ty, out),
                _ => Err(wrong()),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT8 => f.to_sql(ty, out),
                Type::FLOAT4 => (f as f32).to_sql(ty, out),
                _ => Err(wrong()),
            },
            Value::Text(s) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    s.to_sql(ty, out)
                }
                _ => Err(wrong()),
            },
            Value::Blob(b) => match *ty {
                Type::BYTEA => b.to_sql(ty, out),
                _ => Err(wrong()),
            },
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

impl<'a> postgres::types::FromSql<'a> for PgValue<'a> {
    fn from_sql(
        ty: &postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::Type;
        Ok(PgValue(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::BOOL => Value::Int(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                Value::Text(<&str>::from_sql(ty, raw)?)
            }
            Type::BYTEA => Value::Blob(<&[u8]>::from_sql(ty, raw)?),
            _ => return Err(format!("a column of type {ty} cannot be read").into()),
        }))
    }

    fn from_sql_null(
        _: &postgres::types::Type,
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(PgValue(Value::Null))
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }
}

/// Rewrites `?N` (and bare `?`) placeholders to PostgreSQL's `$N`, leaving quoted text and
/// identifiers alone. PostgreSQL must know every parameter's type, so parameters a statement
/// does not name are left out and the others numbered in order: gives the SQL and, for each
/// `$k`, the index (from 0) of the parameter it binds.
pub fn postgres_sql(sql: &str) -> (String, Vec<usize>) {
    // First pass: which `?N` appear, each a (byte range, N) to replace.
    let mut found: Vec<(usize, usize, usize)> = Vec::new();
    let bytes = sql.as_bytes();
    let (mut i, mut next) = (0usize, 1usize);
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let c = bytes[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match c {
            b'\'' | b'"' => {
                quote = Some(c);
                i += 1;
            }
            b'?' => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                let n = sql[start + 1..i].parse().unwrap_or(next);
                next = n + 1;
                found.push((start, i, n));
            }
            _ => i += 1,
        }
    }
    let mut used: Vec<usize> = found.iter().map(|f| f.2).collect();
    used.sort_unstable();
    used.dedup();
    let mut out = String::with_capacity(sql.len() + 8);
    let mut at = 0;
    for (start, end, n) in found {
        out.push_str(&sql[at..start]);
        let k = used.binary_search(&n).unwrap_or(0) + 1;
        out.push('$');
        out.push_str(&k.to_string());
        at = end;
    }
    out.push_str(&sql[at..]);
    (out, used.into_iter().map(|n| n.saturating_sub(1)).collect())
}

/// A PostgreSQL connection with the statements it has prepared, by their SQL as written.
pub(crate) struct PgConn {
    pub(crate) client: postgres::Client,
    statements: HashMap<String, (postgres::Statement, std::sync::Arc<[usize]>)>,
}

impl PgConn {
    pub(crate) fn new(client: postgres::Client) -> PgConn {
        PgConn {
            client,
            statements: HashMap::new(),
        }
    }

    /// The prepared statement for `sql`, and which of the given parameters it binds.
    /// (Both halves are reference-counted: a cached statement costs no allocation.)
    fn prepare(
        &mut self,
        sql: &str,
    ) -> StorageResult<(postgres::Statement, std::sync::Arc<[usize]>)> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let (text, n) = postgres_sql(sql);
        let n: std::sync::Arc<[usize]> = n.into();
        let st = self.client.prepare(&text)?;
        // Bounded: stores write their SQL as constants, but one built at run time must not
        // grow the cache without end.
        if self.statements.len() >= 512 {
            self.statements.clear();
        }
        self.statements
            .insert(sql.to_owned(), (st.clone(), n.clone()));
        Ok((st, n))
    }

    fn bind<'a>(params: &'a [&'a dyn Param], used: &[usize]) -> StorageResult<Vec<PgValue<'a>>> {
        used.iter()
            .map(|&i| {
                params.get(i).map(|p| PgValue(p.value())).ok_or_else(|| {
                    StorageError::backend(format!(
                        "the statement uses parameter {}, {} given",
                        i + 1,
                        params.len()
                    ))
                })
            })
            .collect()
    }
}

fn pg_refs<'a>(values: &'a [PgValue<'a>]) -> Vec<&'a (dyn postgres::types::ToSql + Sync)> {
    values
        .iter()
        .map(|v| v as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

/// A connection to the database, lent to a store's closure.
pub struct Conn<'a> {
    inner: ConnInner<'a>,
    /// Inside a [`Transaction`]: another `BEGIN` would not nest (PostgreSQL only warns, and
    /// the inner commit would commit the outer work early).
    in_transaction: bool,
}

enum ConnInner<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres(&'a mut PgConn),
}

impl fmt::Debug for Conn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("dialect", &self.dialect())
            .finish_non_exhaustive()
    }
}

/// The first `n` of `params` (as many as the statement uses), as rusqlite binds them.
fn sqlite_params<'a>(
    n: usize,
    params: &'a [&'a dyn Param],
) -> StorageResult<rusqlite::ParamsFromIter<impl Iterator<Item = SqliteParam<'a>>>> {
    if params.len() < n {
        return Err(StorageError::backend(format!(
            "the statement uses {n} parameters, {} given",
            params.len()
        )));
    }
    Ok(rusqlite::params_from_iter(
        params[..n].iter().map(|p| SqliteParam(*p)),
    ))
}

/// Executes one statement on SQLite (cached); gives how many rows it changed.
fn sqlite_execute(
    c: &rusqlite::Connection,
    sql: &str,
    params: &[&dyn Param],
) -> StorageResult<usize> {
    let mut st = c.prepare_cached(sql)?;
    let params = sqlite_params(st.parameter_count(), params)?;
    Ok(st.execute(params)?)
}

impl<'a> Conn<'a> {
    pub(crate) fn sqlite(c: &'a rusqlite::Connection) -> Conn<'a> {
        Conn {
            inner: ConnInner::Sqlite(c),
            in_transaction: false,
        }
    }

    pub(crate) fn postgres(c: &'a mut PgConn) -> Conn<'a> {
        Conn {
            inner: ConnInner::Postgres(c),
            in_transaction: false,
        }
    }

    /// The engine behind this connection.
    pub fn dialect(&self) -> Dialect {
        match self.inner {
            ConnInner::Sqlite(_) => Dialect::Sqlite,
            ConnInner::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs statements without parameters, separated by semicolons (a migration).
    pub fn batch(&mut self, sql: &str) -> StorageResult<()> {
        match &mut self.inner {
            ConnInner::Sqlite(c) => c.execute_batch(sql)?,
            ConnInner::Postgres(c) => c.client.batch_execute(sql)?,
        }
        Ok(())
    }

    /// Executes one statement; gives how many rows it changed. A statement binds as many of
    /// `params` as it uses (`?1` to its highest `?N`); more are ignored, fewer are an error.
    pub fn execute(&mut self, sql: &str, params: &[&dyn Param]) -> StorageResult<usize> {
        match &mut self.inner {
            ConnInner::Sqlite(c) => sqlite_execute(c, sql, params),
            ConnInner::Postgres(c) => {
                let (st, n) = c.prepare(sql)?;
                let values = PgConn::bind(params, &n)?;
                let n = c.client.execute(&st, &pg_refs(&values))?;
                Ok(usize::try_from(n).unwrap_or(usize::MAX))
            }
        }
    }

    /// Executes an `INSERT` into a table whose key is an integer `id` column, and gives the
    /// new row's id: SQLite's last row id, PostgreSQL's `RETURNING id` (appended here).
    pub fn insert_id(&mut self, sql: &str, params: &[&dyn Param]) -> StorageResult<i64> {
        match &mut self.inner {
            ConnInner::Sqlite(c) => {
                sqlite_execute(c, sql, params)?;
                Ok(c.last_insert_rowid())
            }
            ConnInner::Postgres(_) => self.query_value(&format!("{sql} RETURNING id"), params),
        }
    }

    /// Runs a query and maps each row with `f`.
    pub fn query_map<T>(
        &mut self,
        sql: &str,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row<'_>) -> StorageResult<T>,
    ) -> StorageResult<Vec<T>> {
        let mut out = Vec::new();
        self.query_each(sql, params, |r| {
            out.push(f(r)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Runs a query and hands each row to `f`, in order.
    pub fn query_each(
        &mut self,
        sql: &str,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row<'_>) -> StorageResult<()>,
    ) -> StorageResult<()> {
        match &mut self.inner {
            ConnInner::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let params = sqlite_params(st.parameter_count(), params)?;
                let mut rows = st.query(params)?;
                while let Some(r) = rows.next()? {
                    f(&Row {
                        inner: RowInner::Sqlite(r),
                    })?;
                }
            }
            ConnInner::Postgres(c) => {
                let (st, n) = c.prepare(sql)?;
                let values = PgConn::bind(params, &n)?;
                for r in c.client.query(&st, &pg_refs(&values))? {
                    f(&Row {
                        inner: RowInner::Postgres(&r),
                    })?;
                }
            }
        }
        Ok(())
    }

    /// The first row of a query mapped with `f`, if there is one.
    pub fn query_opt<T>(
        &mut self,
        sql: &str,
        params: &[&dyn Param],
        f: impl FnOnce(&Row<'_>) -> StorageResult<T>,
    ) -> StorageResult<Option<T>> {
        let mut f = Some(f);
        let mut out = None;
        self.query_each(sql, params, |r| {
            if let Some(f) = f.take() {
                out = Some(f(r)?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// The first row of a query mapped with `f`; an error if there is none.
    pub fn query_row<T>(
        &mut self,
        sql: &str,
        params: &[&dyn Param],
        f: impl FnOnce(&Row<'_>) -> StorageResult<T>,
    ) -> StorageResult<T> {
        self.query_opt(sql, params, f)?
            .ok_or_else(|| StorageError::backend(format!("no row from: {sql}")))
    }

    /// The single value of the first row (a count, an id).
    pub fn query_value<T: FromValue>(
        &mut self,
        sql: &str,
        params: &[&dyn Param],
    ) -> StorageResult<T> {
        self.query_row(sql, params, |r| r.get(0))
    }

    /// Begins a transaction: its statements commit together on
    /// [`commit`](Transaction::commit), and roll back if it is dropped first.
    /// Transactions do not nest: beginning one inside another is an error.
    pub fn transaction(&mut self) -> StorageResult<Transaction<'_, 'a>> {
        if self.in_transaction {
            return Err(StorageError::backend(
                "a transaction was begun inside another (they do not nest)",
            ));
        }
        self.batch("BEGIN")?;
        self.in_transaction = true;
        Ok(Transaction {
            conn: self,
            done: false,
        })
    }
}

/// An open transaction; use it as the [`Conn`] it derefs to.
pub struct Transaction<'c, 'a> {
    conn: &'c mut Conn<'a>,
    done: bool,
}

impl Transaction<'_, '_> {
    /// Commits. If the commit fails, the transaction is rolled back (dropped), so the
    /// connection is never left inside it.
    pub fn commit(mut self) -> StorageResult<()> {
        self.conn.batch("COMMIT")?;
        self.done = true;
        self.conn.in_transaction = false;
        Ok(())
    }
}

impl<'a> std::ops::Deref for Transaction<'_, 'a> {
    type Target = Conn<'a>;
    fn deref(&self) -> &Conn<'a> {
        self.conn
    }
}

impl<'a> std::ops::DerefMut for Transaction<'_, 'a> {
    fn deref_mut(&mut self) -> &mut Conn<'a> {
        self.conn
    }
}

impl Drop for Transaction<'_, '_> {
    fn drop(&mut self) {
        if !self.done {
            // Nothing to report to: the error that made us drop is already on its way. A
            // connection whose rollback failed is unusable, and the next statement says so.
            let _ = self.conn.batch("ROLLBACK");
            self.conn.in_transaction = false;
        }
    }
}

impl From<postgres::Error> for StorageError {
    fn from(e: postgres::Error) -> Self {
        StorageError::Backend(Box::new(e))
    }
}

impl StorageError {
    /// True when a uniqueness or other integrity constraint refused a write.
    pub fn is_constraint_violation(&self) -> bool {
        let StorageError::Backend(e) = self else {
            return false;
        };
        if let Some(rusqlite::Error::SqliteFailure(f, _)) = e.downcast_ref::<rusqlite::Error>() {
            return f.code == rusqlite::ErrorCode::ConstraintViolation;
        }
        if let Some(e) = e.downcast_ref::<postgres::Error>() {
            // Class 23: integrity constraint violation.
            return e.code().is_some_and(|c| c.code().starts_with("23"));
        }
        false
    }

    /// True when PostgreSQL gave up a transaction that another one conflicted with
    /// (serialization failure or deadlock): running it again may succeed.
    pub fn is_conflict(&self) -> bool {
        let StorageError::Backend(e) = self else {
            return false;
        };
        e.downcast_ref::<postgres::Error>()
            .and_then(|e| e.code())
            .is_some_and(|c| {
                *c == postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == postgres::error::SqlState::T_R_DEADLOCK_DETECTED
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollars_outside_quotes() {
        assert_eq!(
            postgres_sql("SELECT a FROM t WHERE b = ?2 AND c = '?1' AND d = ?1"),
            (
                "SELECT a FROM t WHERE b = $2 AND c = '?1' AND d = $1".to_string(),
                vec![0, 1]
            )
        );
        assert_eq!(
            postgres_sql("INSERT INTO t VALUES (?, ?, \"?\")"),
            (
                "INSERT INTO t VALUES ($1, $2, \"?\")".to_string(),
                vec![0, 1]
            )
        );
        // Parameters not named are left out: `?3` binds the third, as `$2`.
        assert_eq!(
            postgres_sql("INSERT INTO t VALUES (?1, ?3, ?3)"),
            ("INSERT INTO t VALUES ($1, $2, $2)".to_string(), vec![0, 2])
        );
        assert_eq!(postgres_sql("SELECT 1").1, Vec::<usize>::new());
    }

    #[test]
    fn sqlite_round_trip_and_transactions() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let mut c = Conn::sqlite(&c);
        c.batch("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER, b BLOB, f REAL)")
            .unwrap();
        c.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3, ?4)",
            crate::params!["a", 7_i64, vec![1u8, 2], 0.5],
        )
        .unwrap();
        {
            let mut tx = c.transaction().unwrap();
            tx.execute(
                "INSERT INTO t (k, n) VALUES (?1, ?2)",
                crate::params!["b", None::<i64>],
            )
            .unwrap();
            // Dropped: rolled back.
        }
        let mut tx = c.transaction().unwrap();
        tx.execute("INSERT INTO t (k, n) VALUES (?1, 1)", crate::params!["c"])
            .unwrap();
        let nested = tx.transaction().map(|_| ()).unwrap_err();
        assert!(nested.to_string().contains("do not nest"), "{nested}");
        tx.commit().unwrap();
        // A failed commit leaves no transaction open: the next one begins.
        {
            let mut tx = c.transaction().unwrap();
            tx.batch("CREATE TABLE parent (k TEXT PRIMARY KEY)")
                .unwrap();
            tx.batch(
                "CREATE TABLE child (k TEXT REFERENCES parent (k) DEFERRABLE INITIALLY DEFERRED)",
            )
            .unwrap();
            tx.commit().unwrap();
        }
        c.batch("PRAGMA foreign_keys = ON").unwrap();
        let mut tx = c.transaction().unwrap();
        tx.execute("INSERT INTO child VALUES ('orphan')", crate::params![])
            .unwrap();
        assert!(tx.commit().is_err(), "the deferred key fails at commit");
        c.transaction().unwrap().commit().unwrap();
        assert_eq!(
            c.query_value::<i64>("SELECT COUNT(*) FROM child", crate::params![])
                .unwrap(),
            0
        );
        let rows: Vec<(String, Option<u32>, Option<Vec<u8>>)> = c
            .query_map("SELECT k, n, b FROM t ORDER BY k", crate::params![], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(
            rows,
            [
                ("a".into(), Some(7), Some(vec![1, 2])),
                ("c".into(), Some(1), None)
            ]
        );
        assert_eq!(
            c.query_value::<f64>("SELECT f FROM t WHERE k = 'a'", crate::params![])
                .unwrap(),
            0.5
        );
        assert!(
            c.query_opt("SELECT k FROM t WHERE k = 'z'", crate::params![], |r| {
                r.get::<String>(0)
            })
            .unwrap()
            .is_none()
        );
        let e = c
            .execute("INSERT INTO t (k) VALUES ('a')", crate::params![])
            .unwrap_err();
        assert!(e.is_constraint_violation(), "{e}");
        let e = c
            .query_value::<u8>("SELECT 300", crate::params![])
            .unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
    }
}
