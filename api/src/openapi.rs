//! The OpenAPI document's frame; paths and schemas come from the handlers'
//! `#[utoipa::path]` annotations. `document()` is what `/openapi.json` serves and
//! `attune-api openapi` prints. CI checks it with `openapi-spec-validator` and
//! `redocly lint`, and compiles a typed client against it (`tests/contract/`).

use attune_shared::sync::tables::{Column, Kind, SyncTable, TABLES};
use serde_json::{Map, Value, json};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Attune API",
        description = "Backend of Attune, a paced ten-step program for overcoming emotional and physical intimacy barriers.\n\n\
                       Authenticated operations take `Authorization: Bearer <access token>` (from sign-up, sign-in or refresh). \
                       Every error is `application/problem+json` (RFC 9457); besides the answers each operation lists, any \
                       operation may answer 500 (logged on the server, no detail shown) or 503 (a dependency is down, or \
                       the request took longer than 30 seconds), unknown paths answer 404 and wrong methods 405 with `Allow`.",
        license(name = "AGPL-3.0-only", identifier = "AGPL-3.0-only")
    ),
    servers((url = "/", description = "This server")),
    modifiers(&BearerAuth),
    tags(
        (name = "accounts", description = "Registration, sign-in, tokens and the person's own account"),
        (name = "program", description = "The ten-step program, enrollment, today's suggestion and professional-help resources"),
        (name = "push", description = "Push: the kinds of device this install accepts (Web Push, APNs, FCM), the Web Push application server key, devices and a test notification"),
        (name = "notifications", description = "One set of notification choices for every notification: each kind on or off, quiet hours, a pause, discreet or descriptive texts"),
        (name = "reminders", description = "Paced reminders: settings, the next reminder, and marking a reminder opened"),
        (name = "reflections", description = "Weekly reflections: each week's check-ins in numbers, a prompt and a gentle focus for the week ahead"),
        (name = "partners", description = "Linking with a partner by consent, and leaving alone at once, unannounced"),
        (name = "sync", description = "Offline-first sync of check-ins, journal entries and boundaries (WatermelonDB protocol)"),
        (name = "operations", description = "Health, readiness, metrics and this documentation"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("The `access_token` from sign-up, sign-in or refresh; valid 15 minutes."))
                    .build(),
            ),
        );
    }
}

/// Properties kept for one release as aliases of the notification settings
/// whose schema is a reference: utoipa drops `deprecated` beside a `$ref`, which
/// OpenAPI 3.1 allows, so [`finish`] adds it.
const DEPRECATED_REFERENCES: [(&str, &str); 2] =
    [("ReminderSettings", "quiet_hours"), ("ReminderSettingsInput", "quiet_hours")];

/// utoipa drops `deprecated` beside a `$ref`; mark those properties here.
fn mark_deprecated_references(doc: &mut Value) -> anyhow::Result<()> {
    for (schema, property) in DEPRECATED_REFERENCES {
        let path = format!("/components/schemas/{schema}/properties/{property}");
        let Some(property) = doc.pointer_mut(&path).and_then(Value::as_object_mut) else {
            anyhow::bail!("OpenAPI: no {path} to mark deprecated");
        };
        property.insert("deprecated".into(), true.into());
    }
    Ok(())
}

/// The whole document, as `/openapi.json` serves it.
pub fn document() -> anyhow::Result<Value> {
    let (_, openapi) = crate::app::api_routes().split_for_parts();
    finish(openapi)
}

/// What the annotations cannot say, added once every route is merged in.
pub(crate) fn finish(openapi: utoipa::openapi::OpenApi) -> anyhow::Result<Value> {
    let mut doc = serde_json::to_value(&openapi)?;
    doc["info"]["version"] = Value::from(env!("CARGO_PKG_VERSION"));
    mark_deprecated_references(&mut doc)?;
    declare_public_operations(&mut doc);
    add_extractor_responses(&mut doc);
    describe_sync_changes(&mut doc);
    Ok(doc)
}

/// An operation without `security` is public and must say so (`security: []`),
/// or a client generator assumes the document's default. Whether that is true is
/// checked against the running server in `tests/tests/conventions.rs`.
fn declare_public_operations(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for operation in item.values_mut().filter_map(Value::as_object_mut) {
            operation.entry("security").or_insert_with(|| json!([]));
        }
    }
}

/// The answers the extractors give for every operation that uses them, so no
/// annotation can forget one: a bearer token (401) and a JSON body (400 for bad
/// syntax, 413 over the size limit, 415 without `Content-Type: application/json`,
/// 422 for values of the wrong shape). An annotation's own, more precise
/// description of the same status wins.
fn add_extractor_responses(doc: &mut Value) {
    let problem = |description: &str| {
        json!({"description": description,
               "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}})
    };
    let mut unauthorized = problem(
        "No valid access token: missing, expired, or its session ended (sign-out, refresh-token reuse, account deleted)",
    );
    unauthorized["headers"] = json!({"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}});
    let responses = json!({
        "Unauthorized": unauthorized,
        "MalformedJson": problem("The body is not valid JSON"),
        "PayloadTooLarge": problem("The body is larger than the server accepts"),
        "NotJson": problem("The body was not sent with `Content-Type: application/json`"),
        "InvalidBody": problem("The body has missing fields or values of the wrong type: `errors` names each"),
    });
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for operation in paths.values_mut().filter_map(Value::as_object_mut).flat_map(|item| item.values_mut()) {
        let secured = operation["security"].as_array().is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
        let has_body = operation.get("requestBody").is_some();
        let Some(answers) = operation.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        let mut add = |status: &str, name: &str| {
            answers.entry(status).or_insert_with(|| json!({"$ref": format!("#/components/responses/{name}")}));
        };
        if secured {
            add("401", "Unauthorized");
        }
        if has_body {
            add("400", "MalformedJson");
            add("413", "PayloadTooLarge");
            add("415", "NotJson");
            add("422", "InvalidBody");
        }
    }
    // Only the ones some operation uses: an unused component is a lint warning.
    let used = serde_json::to_string(&doc["paths"]).unwrap_or_default();
    let responses: Map<String, Value> = responses
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(name, _)| used.contains(&format!("\"#/components/responses/{name}\"")))
        .map(|(name, response)| (name.clone(), response.clone()))
        .collect();
    doc["components"]["responses"] = Value::Object(responses);
}

/// WatermelonDB's change set, table by table, from the same column list the server
/// checks pushed records against (`attune_shared::sync::tables::TABLES`), so the
/// document cannot drift from what sync accepts and returns.
fn describe_sync_changes(doc: &mut Value) {
    let mut schemas = Map::new();
    let mut tables = Map::new();
    let mut exported = Map::new();
    for table in &TABLES {
        let record = record_schema_name(table);
        let changes = format!("{record}Changes");
        schemas.insert(record.clone(), record_schema(table));
        schemas.insert(
            changes.clone(),
            json!({
                "type": "object",
                "description": format!("Changes to `{}`: records created and updated, and ids deleted.", table.name),
                "required": ["created", "updated", "deleted"],
                "properties": {
                    "created": {"type": "array", "items": {"$ref": format!("#/components/schemas/{record}")}},
                    "updated": {"type": "array", "items": {"$ref": format!("#/components/schemas/{record}")}},
                    "deleted": {"type": "array", "description": "Ids of deleted records.",
                                "items": {"$ref": "#/components/schemas/SyncRecordId"}},
                }
            }),
        );
        tables.insert(table.name.to_owned(), json!({"$ref": format!("#/components/schemas/{changes}")}));
        if table.read_only {
            continue;
        }
        exported.insert(
            table.name.to_owned(),
            json!({"type": "array", "items": {"$ref": format!("#/components/schemas/{record}")}}),
        );
    }
    schemas.insert(
        "SyncRecordId".into(),
        json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$",
               "description": "A record id chosen by the client (WatermelonDB's own ids fit).",
               "examples": ["k3mB7qY2x9ZcT1aP"]}),
    );
    schemas.insert(
        "Changes".into(),
        json!({
            "type": "object",
            "description": "WatermelonDB's change set: per synced table, the records created and updated and the ids \
                            deleted. A pull lists every table, and its `created` is always empty: every record comes in \
                            `updated`, so clients sync with `sendCreatedAsUpdated: true`. A push may leave out tables it \
                            did not change. Other table names are refused (422).",
            "properties": Value::Object(tables),
            "additionalProperties": false,
        }),
    );
    // The account export holds the same records, listed per table.
    let records = &mut doc["components"]["schemas"]["AccountExportView"]["properties"]["records"];
    if records.is_object() {
        let description = records["description"].clone();
        *records = json!({"type": "object", "description": description, "properties": Value::Object(exported),
                          "required": TABLES.iter().filter(|t| !t.read_only).map(|t| t.name).collect::<Vec<_>>()});
    }
    if let Some(components) = doc["components"]["schemas"].as_object_mut() {
        components.extend(schemas);
    }
}

/// `checkins` → `CheckinRecord`, `journal_entries` → `JournalEntryRecord`.
fn record_schema_name(table: &SyncTable) -> String {
    let singular = match table.name.strip_suffix("ies") {
        Some(stem) => format!("{stem}y"),
        None => table.name.strip_suffix('s').unwrap_or(table.name).to_owned(),
    };
    let pascal: String = singular
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect();
    format!("{pascal}Record")
}

fn record_schema(table: &SyncTable) -> Value {
    let mut properties = Map::new();
    properties.insert("id".into(), json!({"$ref": "#/components/schemas/SyncRecordId"}));
    let mut required = vec![Value::from("id")];
    for column in table.columns {
        properties.insert(column.name.into(), column_schema(column));
        if !column.nullable {
            required.push(column.name.into());
        }
    }
    json!({
        "type": "object",
        "description": format!(
            "A `{}` record as WatermelonDB holds it. A pull sends every column (null when empty); a push may \
             leave out nullable columns. WatermelonDB's `_status` and `_changed`, and columns the server does not \
             know, are ignored.",
            table.name
        ),
        "required": required,
        "properties": properties,
    })
}

fn column_schema(column: &Column) -> Value {
    let mut schema = match column.kind {
        Kind::Millis => json!({"type": "integer", "format": "int64", "minimum": 946_684_800_000_i64,
                               "maximum": 4_102_444_800_000_i64, "description": "Epoch milliseconds."}),
        Kind::Int { min, max } => json!({"type": "integer", "minimum": min, "maximum": max}),
        Kind::Bool => json!({"type": "boolean"}),
        Kind::Identifier => json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}),
        Kind::ExerciseId => json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$",
                                   "description": "The id of an exercise of the program (GET /v1/programs/{slug})."}),
        Kind::OneOf(values) => json!({"type": "string", "enum": values}),
        Kind::Tags => json!({"type": "string",
                             "description": "A JSON array of up to 10 tags of 1–32 characters, as a string \
                                             (WatermelonDB columns hold no arrays); empty for none.",
                             "examples": ["[\"calm\",\"evening\"]"]}),
        Kind::Private { max_chars } => json!({"type": "string", "maxLength": max_chars,
                                              "description": "Private text: encrypted at rest, never logged."}),
    };
    if column.nullable {
        if let Some(kind) = schema.get("type").cloned() {
            schema["type"] = json!([kind, "null"]);
        }
        if let Some(values) = schema.get_mut("enum").and_then(Value::as_array_mut) {
            values.push(Value::Null);
        }
    }
    schema
}
