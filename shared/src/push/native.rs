//! The native services together: their configuration, checked once at start
//! (a partial one stops the start naming what is missing), and the clients the
//! worker sends with.

use super::{
    ApnsClient, ApnsConfig, FcmClient, FcmConfig, PushPolicy,
    send::{test_root_ders, test_roots},
};
use crate::config::Settings;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NativePushError {
    #[error("{service} is only partly configured: {} not set. Set all of {} to enable {service}, or none of them.", missing.join(", "), all.join(", "))]
    Partial { service: &'static str, missing: Vec<&'static str>, all: &'static [&'static str] },
    #[error("{0} is invalid: {1}")]
    Invalid(&'static str, String),
    #[error(
        "ATTUNE_PUSH_ALLOWED_HOSTS does not allow {0}, which a configured push service needs: add it, or set the service's endpoint"
    )]
    HostNotAllowed(String),
}

/// Which native services are configured, each checked whole.
#[derive(Debug, Clone, Default)]
pub struct NativePushConfig {
    pub apns: Option<ApnsConfig>,
    pub fcm: Option<FcmConfig>,
}

impl NativePushConfig {
    pub fn from_settings(settings: &Settings) -> Result<Self, NativePushError> {
        let policy = PushPolicy::from_settings(settings);
        Ok(Self {
            apns: ApnsConfig::from_settings(settings, &policy)?,
            fcm: FcmConfig::from_settings(settings, &policy)?,
        })
    }
}

/// The worker's clients for the configured native services.
#[derive(Debug, Clone, Default)]
pub struct NativeSenders {
    pub apns: Option<ApnsClient>,
    pub fcm: Option<FcmClient>,
}

impl NativeSenders {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let config = NativePushConfig::from_settings(settings)?;
        let policy = PushPolicy::from_settings(settings);
        let roots = test_roots(settings);
        Ok(Self {
            apns: config.apns.map(|c| ApnsClient::new(c, policy.clone(), test_root_ders(settings))).transpose()?,
            fcm: config.fcm.map(|c| FcmClient::new(c, policy, roots)).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::super::{PushKind, PushMessage, PushPayload, Urgency, apns, fcm};
    use crate::{domain::reminders::reminder_text, notifications::TEST_NOTICE};

    /// Words that say what the app is about: never on a lock screen unless the
    /// person chose descriptive texts.
    const PROGRAM_WORDS: [&str; 10] =
        ["intima", "sex", "body", "bodies", "partner", "touch", "exercise", "step", "program", "closer"];

    /// The title and body each kind of device shows: (web, apns, fcm).
    fn lock_screens(kind: PushKind, (title, body): (String, String)) -> [(String, String); 3] {
        let payload = PushPayload { r#type: kind, title, body, url: "/".into(), delivery_id: Some(Uuid::nil()) };
        let message = PushMessage::new(payload, 60, Urgency::Low);
        let web: serde_json::Value = serde_json::from_slice(&message.payload.to_json().unwrap()).unwrap();
        let apns = apns::request_body(&message);
        let fcm = fcm::request_body("token", &message);
        let text =
            |v: &serde_json::Value| (v["title"].as_str().unwrap().to_owned(), v["body"].as_str().unwrap().to_owned());
        [text(&web), text(&apns["aps"]["alert"]), text(&fcm["message"]["notification"])]
    }

    fn names_the_program(text: &(String, String)) -> Option<&'static str> {
        let lower = format!("{} {}", text.0, text.1).to_lowercase();
        PROGRAM_WORDS.into_iter().find(|word| lower.contains(word))
    }

    #[test]
    fn no_kind_shows_program_words_on_the_lock_screen_unless_descriptive_texts_were_chosen() {
        let owned = |(title, body): (&str, &str)| (title.to_owned(), body.to_owned());
        let mut discreet = vec![
            (PushKind::Test, owned(TEST_NOTICE)),
            (PushKind::Reflection, owned(crate::domain::reflection::reflection_notice())),
            (PushKind::PartnerUpdate, owned(crate::partners::updates::PARTNER_UPDATE_NOTICE)),
        ];
        for seed in 0..100 {
            discreet.push((PushKind::Reminder, reminder_text(false, Some("Gentle touch"), seed)));
            discreet.push((PushKind::Reminder, reminder_text(true, None, seed)));
        }
        for (kind, text) in discreet {
            let shown = lock_screens(kind, text.clone());
            for (screen, name) in shown.iter().zip(["web", "apns", "fcm"]) {
                assert_eq!(screen, &text, "{name} shows the same text as every kind");
                assert_eq!(names_the_program(screen), None, "{name}: {screen:?}");
            }
        }
        // Descriptive texts, chosen by the person, do name the suggestion: the
        // check above is one that can fail.
        let chosen = reminder_text(true, Some("Gentle touch"), 7);
        for screen in lock_screens(PushKind::Reminder, chosen) {
            assert_eq!(names_the_program(&screen), Some("touch"), "{screen:?}");
        }
    }
}
