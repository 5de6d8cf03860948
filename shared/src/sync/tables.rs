//! The synced tables, column by column, and how a pushed raw record is checked.
//! This list is the whitelist: no other table or column name ever reaches SQL or
//! a client.

use serde_json::Value;

use crate::domain::ValidationErrors;

/// The newest WatermelonDB schema version the server knows.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Epoch milliseconds, 2000-01-01 to 2100-01-01.
    Millis,
    /// A whole number in `min..=max`.
    Int {
        min: i64,
        max: i64,
    },
    Bool,
    /// A client or catalog id: 1–64 characters of `[A-Za-z0-9_-]`.
    Identifier,
    /// The id of an exercise of the program catalog.
    ExerciseId,
    /// One of a few strings.
    OneOf(&'static [&'static str]),
    /// A string holding a JSON array of up to 10 short strings.
    Tags,
    /// Private text, encrypted at rest, at most `max_chars` characters.
    Private {
        max_chars: usize,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub nullable: bool,
    /// The schema version that added the column.
    pub since: u32,
}

#[derive(Debug)]
pub struct SyncTable {
    pub name: &'static str,
    pub columns: &'static [Column],
    /// The schema version that added the table.
    pub since: u32,
    /// Filled by the server only (the partner's shared items): pushes to it are
    /// refused, and an account export leaves it out.
    pub read_only: bool,
}

const fn col(name: &'static str, kind: Kind, nullable: bool) -> Column {
    Column { name, kind, nullable, since: 1 }
}

/// The check-ins table: the program's rules read a summary of it
/// (`super::summary`), which every push keeps up to date.
pub const CHECKINS: &str = "checkins";

pub static TABLES: [SyncTable; 4] = [
    SyncTable {
        name: CHECKINS,
        since: 1,
        read_only: false,
        columns: &[
            col("occurred_at", Kind::Millis, false),
            col("mood", Kind::Int { min: 1, max: 5 }, false),
            col("anxiety", Kind::Int { min: 0, max: 10 }, false),
            col("comfort", Kind::Int { min: 1, max: 5 }, false),
            col("exercise_id", Kind::ExerciseId, true),
            col("completed", Kind::Bool, false),
            col("note", Kind::Private { max_chars: 4_000 }, true),
            col("tags", Kind::Tags, true),
        ],
    },
    SyncTable {
        name: "journal_entries",
        since: 1,
        read_only: false,
        columns: &[
            col("step", Kind::Int { min: 1, max: 10 }, true),
            col("prompt_id", Kind::Identifier, true),
            col("body", Kind::Private { max_chars: 20_000 }, false),
            col("occurred_at", Kind::Millis, false),
            // Null from schema-1 devices: not shared.
            Column { name: "shared_with_partner", kind: Kind::Bool, nullable: true, since: 2 },
        ],
    },
    SyncTable {
        name: "boundaries",
        since: 1,
        read_only: false,
        columns: &[
            col("kind", Kind::OneOf(&["emotional", "physical"]), false),
            col("text", Kind::Private { max_chars: 1_000 }, false),
            col("shared_with_partner", Kind::Bool, false),
            col("active", Kind::Bool, false),
        ],
    },
    // What the partner shares, as this person's devices receive it (see
    // `sync::partner_items`). Never the partner's step, dates or scores.
    SyncTable {
        name: PARTNER_ITEMS,
        since: 2,
        read_only: true,
        columns: &[
            Column { name: "kind", kind: Kind::OneOf(&["boundary", "journal_entry"]), nullable: false, since: 2 },
            Column { name: "boundary_kind", kind: Kind::OneOf(&["emotional", "physical"]), nullable: true, since: 2 },
            Column { name: "text", kind: Kind::Private { max_chars: 20_000 }, nullable: false, since: 2 },
        ],
    },
];

/// The read-only table of the partner's shared items.
pub const PARTNER_ITEMS: &str = "partner_items";

/// The `partner_items` table (the last of [`TABLES`]).
pub fn partner_items() -> &'static SyncTable {
    &TABLES[3]
}

pub fn table(name: &str) -> Option<&'static SyncTable> {
    TABLES.iter().find(|t| t.name == name)
}

/// A checked value, in the column's terms. Private text is still plaintext here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Null,
    Int(i64),
    Bool(bool),
    Text(String),
}

/// A pushed record that passed every check, its cells in column order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    pub cells: Vec<Cell>,
}

const MIN_MILLIS: i64 = 946_684_800_000; // 2000-01-01
const MAX_MILLIS: i64 = 4_102_444_800_000; // 2100-01-01
pub const MAX_TAGS: usize = 10;
pub const MAX_TAG_CHARS: usize = 32;

/// Checks a client-chosen record id.
pub fn parse_id(value: &Value) -> Result<String, String> {
    match value.as_str() {
        Some(id) if is_identifier(id) => Ok(id.to_owned()),
        Some(_) => Err("must be 1–64 characters of letters, digits, `-` and `_`".into()),
        None => Err("must be a string id".into()),
    }
}

fn is_identifier(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks a raw record of `table`. Unknown columns, `_status` and `_changed` are
/// ignored, as WatermelonDB's protocol asks; every problem is recorded.
pub fn parse_record(table: &SyncTable, raw: &Value, errors: &mut ValidationErrors) -> Option<Record> {
    let Some(object) = raw.as_object() else {
        errors.add_for_record(table.name, "", "record", "must be a JSON object");
        return None;
    };
    let id = match object.get("id").map(parse_id) {
        Some(Ok(id)) => id,
        Some(Err(message)) => {
            errors.add_for_record(table.name, "", "id", message);
            return None;
        }
        None => {
            errors.add_for_record(table.name, "", "id", "is required");
            return None;
        }
    };
    let before = errors.len();
    let cells: Vec<Cell> = table
        .columns
        .iter()
        .map(|column| match parse_cell(column, object.get(column.name).unwrap_or(&Value::Null)) {
            Ok(cell) => cell,
            Err(message) => {
                errors.add_for_record(table.name, &id, column.name, message);
                Cell::Null
            }
        })
        .collect();
    (errors.len() == before).then_some(Record { id, cells })
}

fn parse_cell(column: &Column, value: &Value) -> Result<Cell, String> {
    if value.is_null() {
        return if column.nullable { Ok(Cell::Null) } else { Err("is required".into()) };
    }
    match column.kind {
        Kind::Millis => whole_number(value)
            .filter(|n| (MIN_MILLIS..MAX_MILLIS).contains(n))
            .map(Cell::Int)
            .ok_or_else(|| "must be a time in epoch milliseconds (between 2000 and 2100)".into()),
        Kind::Int { min, max } => whole_number(value)
            .filter(|n| (min..=max).contains(n))
            .map(Cell::Int)
            .ok_or_else(|| format!("must be a whole number from {min} to {max}")),
        Kind::Bool => value.as_bool().map(Cell::Bool).ok_or_else(|| "must be true or false".into()),
        Kind::Identifier => match value.as_str() {
            Some(s) if is_identifier(s) => Ok(Cell::Text(s.to_owned())),
            _ => Err("must be an id of 1–64 letters, digits, `-` or `_`".into()),
        },
        Kind::ExerciseId => match value.as_str() {
            Some(s) if is_identifier(s) && crate::content::catalog().is_ok_and(|c| c.exercise(s).is_some()) => {
                Ok(Cell::Text(s.to_owned()))
            }
            _ => Err("must be the id of an exercise of the program (see GET /v1/programs/closer)".into()),
        },
        Kind::OneOf(allowed) => match value.as_str() {
            Some(s) if allowed.contains(&s) => Ok(Cell::Text(s.to_owned())),
            _ => Err(format!("must be one of: {}", allowed.join(", "))),
        },
        Kind::Tags => parse_tags(value),
        Kind::Private { max_chars } => match value.as_str() {
            Some(s) if s.chars().count() <= max_chars => Ok(Cell::Text(s.to_owned())),
            Some(_) => Err(format!("must be at most {max_chars} characters")),
            None => Err("must be text".into()),
        },
    }
}

/// WatermelonDB columns hold only strings, numbers and booleans, so tags travel as
/// a string holding a JSON array. Stored canonically; `""` means no tags.
fn parse_tags(value: &Value) -> Result<Cell, String> {
    let Some(text) = value.as_str() else {
        return Err("must be a string holding a JSON array of tags, e.g. \"[\\\"calm\\\"]\"".into());
    };
    if text.trim().is_empty() {
        return Ok(Cell::Text(String::new()));
    }
    let parsed: Vec<String> = serde_json::from_str(text)
        .map_err(|_| "must be a string holding a JSON array of strings, e.g. \"[\\\"calm\\\"]\"".to_owned())?;
    if parsed.len() > MAX_TAGS {
        return Err(format!("may hold at most {MAX_TAGS} tags"));
    }
    if parsed.iter().any(|t| t.trim().is_empty() || t.chars().count() > MAX_TAG_CHARS) {
        return Err(format!("each tag must be 1–{MAX_TAG_CHARS} characters"));
    }
    Ok(Cell::Text(serde_json::to_string(&parsed).unwrap_or_default()))
}

/// JSON numbers arrive as floats from JavaScript; `3.0` is 3, `3.5` is not whole.
fn whole_number(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| value.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A pull writes column names into its JSON unescaped (`SyncService::write_row`).
    #[test]
    fn column_names_need_no_escaping_in_json() {
        for table in &TABLES {
            for column in table.columns {
                assert!(column.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{}", column.name);
            }
        }
    }

    fn checkins() -> &'static SyncTable {
        table("checkins").unwrap()
    }

    fn valid_checkin() -> Value {
        json!({"id": "c1", "occurred_at": 1_763_900_000_000_i64, "mood": 3, "anxiety": 4, "comfort": 2,
               "exercise_id": null, "completed": false, "note": "ok", "tags": "[\"calm\"]",
               "_status": "created", "_changed": "", "unknown_column": 1})
    }

    fn check(raw: Value) -> Result<Record, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        parse_record(checkins(), &raw, &mut errors).ok_or(errors)
    }

    fn fields_of(raw: Value) -> Vec<String> {
        check(raw).unwrap_err().0.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_valid_checkin_parses_and_ignores_unknown_columns() {
        let record = check(valid_checkin()).unwrap();
        assert_eq!(record.id, "c1");
        assert_eq!(record.cells[1], Cell::Int(3));
        assert_eq!(record.cells[6], Cell::Text("ok".into()));
        assert_eq!(record.cells[7], Cell::Text("[\"calm\"]".into()));
        assert_eq!(record.cells.len(), checkins().columns.len());
    }

    #[test]
    fn range_edges_of_every_scale() {
        for (field, ok, bad) in [("mood", [1, 5], [0, 6]), ("anxiety", [0, 10], [-1, 11]), ("comfort", [1, 5], [0, 6])]
        {
            for value in ok {
                let mut raw = valid_checkin();
                raw[field] = json!(value);
                assert!(check(raw).is_ok(), "{field}={value} is valid");
            }
            for value in bad {
                let mut raw = valid_checkin();
                raw[field] = json!(value);
                assert_eq!(fields_of(raw), [field], "{field}={value} is invalid");
            }
        }
        let mut raw = valid_checkin();
        raw["mood"] = json!(3.0);
        assert!(check(raw).is_ok(), "3.0 from JavaScript is 3");
        let mut raw = valid_checkin();
        raw["mood"] = json!(3.5);
        assert_eq!(fields_of(raw), ["mood"]);
    }

    #[test]
    fn every_bad_field_is_named() {
        let raw = json!({"id": "c2", "occurred_at": "yesterday", "mood": null, "anxiety": 4, "comfort": 2,
                         "exercise_id": "not-in-the-catalog", "completed": 1, "note": 5, "tags": "calm"});
        assert_eq!(fields_of(raw), ["occurred_at", "mood", "exercise_id", "completed", "note", "tags"]);
    }

    #[test]
    fn private_text_and_tags_have_limits() {
        let mut raw = valid_checkin();
        raw["note"] = json!("é".repeat(4_000));
        assert!(check(raw).is_ok(), "4,000 characters, not bytes");
        let mut raw = valid_checkin();
        raw["note"] = json!("a".repeat(4_001));
        assert_eq!(fields_of(raw), ["note"]);

        let ten: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
        let mut raw = valid_checkin();
        raw["tags"] = json!(serde_json::to_string(&ten).unwrap());
        assert!(check(raw).is_ok());
        for bad in [json!(["a"]), json!("[\"a\",1]"), json!("[\"\"]"), json!(format!("[\"{}\"]", "x".repeat(33)))] {
            let mut raw = valid_checkin();
            raw["tags"] = bad.clone();
            assert_eq!(fields_of(raw), ["tags"], "{bad}");
        }
        let eleven: Vec<String> = (0..11).map(|i| format!("t{i}")).collect();
        let mut raw = valid_checkin();
        raw["tags"] = json!(serde_json::to_string(&eleven).unwrap());
        assert_eq!(fields_of(raw), ["tags"]);
    }

    #[test]
    fn exercise_ids_must_name_a_catalog_exercise() {
        let mut raw = valid_checkin();
        raw["exercise_id"] = json!("s1-barrier-map");
        assert_eq!(check(raw).unwrap().cells[4], Cell::Text("s1-barrier-map".into()));
        let mut raw = valid_checkin();
        raw["exercise_id"] = json!("s1-made-up");
        assert_eq!(fields_of(raw), ["exercise_id"]);
    }

    #[test]
    fn ids_are_checked() {
        for bad in [json!(""), json!("a b"), json!("../x"), json!("x".repeat(65)), json!(7), json!("é")] {
            assert!(parse_id(&bad).is_err(), "{bad}");
        }
        assert_eq!(parse_id(&json!("Ab_9-z")).unwrap(), "Ab_9-z");
        let mut raw = valid_checkin();
        raw["id"] = json!("bad id");
        assert_eq!(fields_of(raw), ["id"]);
    }

    #[test]
    fn boundaries_take_only_known_kinds() {
        let boundaries = table("boundaries").unwrap();
        let mut errors = ValidationErrors::new();
        let raw = json!({"id": "b1", "kind": "spiritual", "text": "x", "shared_with_partner": true, "active": true});
        assert!(parse_record(boundaries, &raw, &mut errors).is_none());
        assert_eq!(errors.0[0].field, "kind");
        assert_eq!(errors.0[0].table.as_deref(), Some("boundaries"));
        assert_eq!(errors.0[0].record_id.as_deref(), Some("b1"));
    }
}
