//! What we push: the payload the service worker reads, and the RFC 8030 headers
//! that tell the push service how to treat it.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Push services keep a message at most about four weeks (FCM's limit); a longer
/// TTL is clamped rather than refused.
pub const MAX_TTL_SECS: u32 = 28 * 24 * 60 * 60;

/// A message for one subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushMessage {
    pub payload: PushPayload,
    /// How long the push service should keep an undelivered message, in seconds
    /// (RFC 8030 §5.2; 0 means "deliver now or drop").
    pub ttl_secs: u32,
    pub urgency: Urgency,
    /// Replaces an undelivered message with the same topic (RFC 8030 §5.4).
    pub topic: Option<Topic>,
}

impl PushMessage {
    pub fn new(payload: PushPayload, ttl_secs: u32, urgency: Urgency) -> Self {
        Self { payload, ttl_secs, urgency, topic: None }
    }

    pub fn with_topic(mut self, topic: Topic) -> Self {
        self.topic = Some(topic);
        self
    }

    /// The `TTL` header's value.
    pub fn ttl_header(&self) -> u32 {
        self.ttl_secs.min(MAX_TTL_SECS)
    }
}

/// What the kind of a notification is, so the service worker can choose how to
/// show it and where a tap leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushKind {
    Test,
    Reminder,
    Reflection,
    /// The partner shared something (`partners::updates`).
    PartnerUpdate,
}

/// The JSON the service worker receives: `{type,title,body,url,delivery_id}`.
///
/// `Debug` leaves out the texts: descriptive texts may be intimate.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushPayload {
    pub r#type: PushKind,
    pub title: String,
    pub body: String,
    /// Where a tap on the notification leads, a path within the app.
    pub url: String,
    /// The delivery this message announces, so the app can mark it seen.
    pub delivery_id: Option<Uuid>,
}

impl PushPayload {
    /// The compact JSON that is encrypted into the message.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

impl fmt::Debug for PushPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushPayload")
            .field("type", &self.r#type)
            .field("delivery_id", &self.delivery_id)
            .finish_non_exhaustive()
    }
}

/// RFC 8030 §5.3: how soon the device should be woken for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Urgency {
    VeryLow,
    Low,
    #[default]
    Normal,
    High,
}

impl Urgency {
    /// The `Urgency` header's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VeryLow => "very-low",
            Self::Low => "low",
            Self::Normal => "normal",
            Self::High => "high",
        }
    }
}

impl fmt::Display for Urgency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("urgency must be very-low, low, normal or high")]
pub struct UrgencyError;

impl FromStr for Urgency {
    type Err = UrgencyError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "very-low" => Ok(Self::VeryLow),
            "low" => Ok(Self::Low),
            "normal" => Ok(Self::Normal),
            "high" => Ok(Self::High),
            _ => Err(UrgencyError),
        }
    }
}

/// RFC 8030 §5.4: a topic is at most 32 characters of the base64url alphabet, so
/// it can travel in a header and key the push service's store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Topic(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("a topic must not be empty")]
    Empty,
    #[error("a topic is at most 32 characters")]
    TooLong,
    #[error("a topic uses only the base64url alphabet (A-Z a-z 0-9 - _)")]
    Alphabet,
}

impl Topic {
    pub const MAX_LEN: usize = 32;

    pub fn parse(value: &str) -> Result<Self, TopicError> {
        if value.is_empty() {
            return Err(TopicError::Empty);
        }
        if value.len() > Self::MAX_LEN {
            return Err(TopicError::TooLong);
        }
        if !value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(TopicError::Alphabet);
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Topic {
    type Error = TopicError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Topic> for String {
    fn from(topic: Topic) -> Self {
        topic.0
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> PushPayload {
        PushPayload {
            r#type: PushKind::Reminder,
            title: "A moment for you".into(),
            body: "Ready when you are.".into(),
            url: "/today".into(),
            delivery_id: Some(Uuid::nil()),
        }
    }

    #[test]
    fn the_payload_is_compact_json_with_the_agreed_keys() {
        let json = String::from_utf8(payload().to_json().unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"type":"reminder","title":"A moment for you","body":"Ready when you are.","url":"/today","delivery_id":"00000000-0000-0000-0000-000000000000"}"#
        );
        let test = PushPayload { r#type: PushKind::Test, delivery_id: None, ..payload() };
        let value: serde_json::Value = serde_json::from_slice(&test.to_json().unwrap()).unwrap();
        assert_eq!(value["type"], "test");
        assert!(value["delivery_id"].is_null());
    }

    #[test]
    fn debug_leaves_out_the_texts() {
        let shown = format!("{:?}", payload());
        assert!(!shown.contains("moment") && !shown.contains("Ready"), "{shown}");
        assert!(shown.contains("Reminder"));
    }

    #[test]
    fn urgency_uses_the_rfc_header_values() {
        for (urgency, text) in [
            (Urgency::VeryLow, "very-low"),
            (Urgency::Low, "low"),
            (Urgency::Normal, "normal"),
            (Urgency::High, "high"),
        ] {
            assert_eq!(urgency.as_str(), text);
            assert_eq!(text.parse::<Urgency>(), Ok(urgency));
            assert_eq!(serde_json::to_value(urgency).unwrap(), text);
        }
        assert_eq!("urgent".parse::<Urgency>(), Err(UrgencyError));
        assert_eq!("High".parse::<Urgency>(), Err(UrgencyError));
        assert_eq!(Urgency::default(), Urgency::Normal);
    }

    #[test]
    fn topics_follow_rfc_8030_section_5_4() {
        assert!(Topic::parse("reminder").is_ok());
        assert!(Topic::parse("a-B_9").is_ok());
        assert!(Topic::parse(&"x".repeat(32)).is_ok());
        assert_eq!(Topic::parse(&"x".repeat(33)), Err(TopicError::TooLong));
        assert_eq!(Topic::parse(""), Err(TopicError::Empty));
        assert_eq!(Topic::parse("with space"), Err(TopicError::Alphabet));
        assert_eq!(Topic::parse("a=b"), Err(TopicError::Alphabet));
        assert_eq!(Topic::parse("ünï"), Err(TopicError::Alphabet));
        assert_eq!(Topic::parse("a+b/c"), Err(TopicError::Alphabet));
    }

    #[test]
    fn a_message_survives_a_job_queue_round_trip() {
        let message =
            PushMessage::new(payload(), 3600, Urgency::High).with_topic(Topic::parse("daily-reminder").unwrap());
        let stored = serde_json::to_string(&message).unwrap();
        assert_eq!(serde_json::from_str::<PushMessage>(&stored).unwrap(), message);
        let tampered = stored.replace("\"daily-reminder\"", "\"not a topic\"");
        assert!(serde_json::from_str::<PushMessage>(&tampered).is_err());
    }

    #[test]
    fn the_ttl_header_is_clamped_to_four_weeks() {
        let mut message = PushMessage::new(payload(), 60, Urgency::Normal);
        assert_eq!(message.ttl_header(), 60);
        message.ttl_secs = u32::MAX;
        assert_eq!(message.ttl_header(), MAX_TTL_SECS);
    }
}
