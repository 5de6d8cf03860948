//! The native services together: their configuration, checked once at start
//! (a partial one stops the start naming what is missing), and the clients the
//! worker sends with.

use super::{ApnsClient, ApnsConfig, FcmClient, FcmConfig, PushPolicy, send::test_roots};
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
            apns: config.apns.map(|c| ApnsClient::new(c, policy.clone(), roots.clone())).transpose()?,
            fcm: config.fcm.map(|c| FcmClient::new(c, policy, roots)).transpose()?,
        })
    }
}
