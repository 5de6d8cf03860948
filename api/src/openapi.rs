//! The OpenAPI document's frame; paths and schemas come from the handlers.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Attune API",
        description = "Backend of Attune, a paced ten-step program for overcoming emotional and physical intimacy barriers. \
                       Every error is application/problem+json (RFC 9457).",
        license(name = "AGPL-3.0-only")
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "accounts", description = "Registration, sign-in, tokens and the person's own account"),
        (name = "program", description = "The ten-step program, enrollment, today's suggestion and professional-help resources"),
        (name = "push", description = "Web Push: the application server key, device subscriptions and a test notification"),
        (name = "notifications", description = "One set of notification choices for every notification: each kind on or off, quiet hours, a pause, discreet or descriptive texts"),
        (name = "reminders", description = "Paced reminders: settings, the next reminder, and marking a reminder opened"),
        (name = "reflections", description = "Weekly reflections: each week's check-ins in numbers, a prompt and a gentle focus for the week ahead"),
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
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// Properties kept for one release as aliases of the notification settings
/// whose schema is a reference: utoipa drops `deprecated` beside a `$ref`, which
/// OpenAPI 3.1 allows, so [`render`] adds it.
const DEPRECATED_REFERENCES: [(&str, &str); 2] =
    [("ReminderSettings", "quiet_hours"), ("ReminderSettingsInput", "quiet_hours")];

/// The document as served, as JSON.
pub fn render(openapi: &utoipa::openapi::OpenApi) -> anyhow::Result<String> {
    let mut doc = serde_json::to_value(openapi)?;
    for (schema, property) in DEPRECATED_REFERENCES {
        let path = format!("/components/schemas/{schema}/properties/{property}");
        let Some(property) = doc.pointer_mut(&path).and_then(serde_json::Value::as_object_mut) else {
            anyhow::bail!("OpenAPI: no {path} to mark deprecated");
        };
        property.insert("deprecated".into(), true.into());
    }
    Ok(serde_json::to_string(&doc)?)
}
