//! Which push endpoints we are willing to contact.
//!
//! An endpoint is a URL a browser (or anyone holding an access token) hands us,
//! and the worker will POST to it: without a check that is a server-side request
//! forgery waiting to happen. Only the configured push-service hosts pass, over
//! https on the default port; the same check runs again before every request.

use url::{Host, Url};

use super::NativeServices;
use crate::config::Settings;

/// Real endpoints are a few hundred characters; anything far longer is abuse.
pub const MAX_ENDPOINT_LEN: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("must be a URL")]
    Invalid,
    #[error("must be at most {MAX_ENDPOINT_LEN} characters")]
    TooLong,
    #[error("must be an https URL")]
    NotHttps,
    #[error("must not contain credentials")]
    Credentials,
    #[error("must name a push service host")]
    NoHost,
    #[error("must not be an IP address")]
    IpLiteral,
    #[error("must not be localhost")]
    Localhost,
    #[error("must use the default port")]
    Port,
    #[error("is not on a known push service")]
    HostNotAllowed,
}

/// The push-service hosts we may contact, and whether plain http is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushPolicy {
    allowed_hosts: Vec<HostPattern>,
    allow_http: bool,
    /// Which native services (APNs, FCM) devices may be registered for.
    native: NativeServices,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// `*.example.com` stored as `.example.com`: subdomains only.
    Subdomains(String),
}

impl PushPolicy {
    /// `allowed_hosts` entries are host names, or `*.domain` for any subdomain of
    /// `domain` (not `domain` itself). `allow_http` also admits plain http, IP
    /// literals, `localhost` and any port — for tests and local development.
    pub fn new(allowed_hosts: &[String], allow_http: bool) -> Self {
        let allowed_hosts = allowed_hosts
            .iter()
            .filter_map(|entry| {
                let entry = entry.trim().to_ascii_lowercase();
                match entry.strip_prefix("*.") {
                    // A bare `*` or `*.` would allow everything: never.
                    Some(domain) if domain.is_empty() || domain.contains('*') => None,
                    Some(domain) => Some(HostPattern::Subdomains(format!(".{domain}"))),
                    None if entry.is_empty() || entry.contains('*') => None,
                    None => Some(HostPattern::Exact(entry)),
                }
            })
            .collect();
        Self { allowed_hosts, allow_http, native: NativeServices::default() }
    }

    pub fn from_settings(settings: &Settings) -> Self {
        Self::new(&settings.push_allowed_hosts, settings.push_allow_http)
            .with_native(NativeServices::from_settings(settings))
    }

    pub fn with_native(mut self, native: NativeServices) -> Self {
        self.native = native;
        self
    }

    pub fn native(&self) -> NativeServices {
        self.native
    }

    pub fn allow_http(&self) -> bool {
        self.allow_http
    }

    /// Parses and checks an endpoint.
    pub fn parse_endpoint(&self, endpoint: &str) -> Result<Url, EndpointError> {
        if endpoint.len() > MAX_ENDPOINT_LEN {
            return Err(EndpointError::TooLong);
        }
        let url = Url::parse(endpoint).map_err(|_| EndpointError::Invalid)?;
        self.check_endpoint(&url)?;
        Ok(url)
    }

    /// Whether we may POST to `url`.
    pub fn check_endpoint(&self, url: &Url) -> Result<(), EndpointError> {
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            _ => return Err(EndpointError::NotHttps),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(EndpointError::Credentials);
        }
        let host = url.host().ok_or(EndpointError::NoHost)?;
        if !self.allow_http {
            match host {
                Host::Ipv4(_) | Host::Ipv6(_) => return Err(EndpointError::IpLiteral),
                Host::Domain(domain) if is_localhost(domain) => {
                    return Err(EndpointError::Localhost);
                }
                Host::Domain(_) => {}
            }
            // `port()` is `None` for the scheme's default port.
            if url.port().is_some() {
                return Err(EndpointError::Port);
            }
        }
        let host = url.host_str().ok_or(EndpointError::NoHost)?;
        if self.is_host_allowed(host) { Ok(()) } else { Err(EndpointError::HostNotAllowed) }
    }

    /// Whether `host` (lowercase, as `Url::host_str` gives it) is on the list.
    pub fn is_host_allowed(&self, host: &str) -> bool {
        self.allowed_hosts.iter().any(|pattern| match pattern {
            HostPattern::Exact(exact) => host == exact,
            HostPattern::Subdomains(suffix) => {
                host.strip_suffix(suffix.as_str()).is_some_and(|label| !label.is_empty() && !label.ends_with('.'))
            }
        })
    }
}

fn is_localhost(domain: &str) -> bool {
    domain == "localhost" || domain.ends_with(".localhost") || domain == "localhost."
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_policy() -> PushPolicy {
        let hosts: Vec<String> =
            ["fcm.googleapis.com", "updates.push.services.mozilla.com", "*.push.apple.com", "*.notify.windows.com"]
                .map(String::from)
                .to_vec();
        PushPolicy::new(&hosts, false)
    }

    fn check(policy: &PushPolicy, endpoint: &str) -> Result<(), EndpointError> {
        policy.parse_endpoint(endpoint).map(|_| ())
    }

    #[test]
    fn the_known_push_services_pass() {
        let policy = default_policy();
        for endpoint in [
            "https://fcm.googleapis.com/fcm/send/abc:APA91b",
            "https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
            "https://web.push.apple.com/QGuQyavXutnMH",
            "https://wns2-bn3p.notify.windows.com/w/?token=BQYAAA",
            "https://FCM.GoogleAPIs.com/fcm/send/x",
            "https://fcm.googleapis.com:443/fcm/send/x",
        ] {
            assert_eq!(check(&policy, endpoint), Ok(()), "{endpoint}");
        }
    }

    #[test]
    fn a_wildcard_matches_subdomains_only() {
        let policy = default_policy();
        assert_eq!(check(&policy, "https://a.b.push.apple.com/x"), Ok(()));
        for endpoint in [
            "https://push.apple.com/x",
            "https://evilpush.apple.com/x",
            "https://web.push.apple.com.evil.example/x",
            "https://evil.example/web.push.apple.com",
            "https://fcm.googleapis.com.evil.example/x",
            "https://evilfcm.googleapis.com/x",
            "https://sub.fcm.googleapis.com/x",
        ] {
            assert_eq!(check(&policy, endpoint), Err(EndpointError::HostNotAllowed), "{endpoint}");
        }
    }

    #[test]
    fn unsafe_endpoints_are_refused_with_a_reason() {
        let policy = default_policy();
        let cases = [
            ("not a url", EndpointError::Invalid),
            ("http://fcm.googleapis.com/x", EndpointError::NotHttps),
            ("ftp://fcm.googleapis.com/x", EndpointError::NotHttps),
            ("https://user:pw@fcm.googleapis.com/x", EndpointError::Credentials),
            ("https://user@fcm.googleapis.com/x", EndpointError::Credentials),
            ("https://127.0.0.1/x", EndpointError::IpLiteral),
            ("https://[::1]/x", EndpointError::IpLiteral),
            ("https://2130706433/x", EndpointError::IpLiteral),
            ("https://0x7f.1/x", EndpointError::IpLiteral),
            ("https://localhost/x", EndpointError::Localhost),
            ("https://api.localhost/x", EndpointError::Localhost),
            ("https://fcm.googleapis.com:8443/x", EndpointError::Port),
            ("https://fcm.googleapis.com./x", EndpointError::HostNotAllowed),
        ];
        for (endpoint, expected) in cases {
            assert_eq!(check(&policy, endpoint), Err(expected), "{endpoint}");
        }
        let long = format!("https://fcm.googleapis.com/{}", "a".repeat(MAX_ENDPOINT_LEN));
        assert_eq!(check(&policy, &long), Err(EndpointError::TooLong));
    }

    #[test]
    fn allow_http_admits_local_test_services_on_the_list_only() {
        let policy = PushPolicy::new(&["127.0.0.1".into(), "localhost".into()], true);
        assert_eq!(check(&policy, "http://127.0.0.1:4000/push/1"), Ok(()));
        assert_eq!(check(&policy, "https://127.0.0.1:4000/push/1"), Ok(()));
        assert_eq!(check(&policy, "http://localhost:4000/push/1"), Ok(()));
        assert_eq!(check(&policy, "http://10.0.0.1/push/1"), Err(EndpointError::HostNotAllowed));
        assert_eq!(check(&policy, "http://user@127.0.0.1:4000/push/1"), Err(EndpointError::Credentials));
        assert_eq!(check(&policy, "file:///etc/passwd"), Err(EndpointError::NotHttps));
    }

    #[test]
    fn list_entries_are_normalised_and_catch_alls_ignored() {
        let policy = PushPolicy::new(
            &[" FCM.googleapis.com ".into(), "*".into(), "*.".into(), "".into(), "a.*.com".into()],
            false,
        );
        assert!(policy.is_host_allowed("fcm.googleapis.com"));
        assert!(!policy.is_host_allowed("evil.example"));
        assert!(!policy.is_host_allowed("a.b.com"));
        assert!(!PushPolicy::new(&[], false).is_host_allowed("fcm.googleapis.com"));
    }

    #[test]
    fn the_policy_comes_from_the_settings() {
        let settings = Settings::from_args(["--push-allow-http"]).unwrap();
        let policy = PushPolicy::from_settings(&settings);
        assert!(policy.allow_http());
        assert!(policy.is_host_allowed("fcm.googleapis.com"));
        assert!(policy.is_host_allowed("web.push.apple.com"));
        assert!(!policy.is_host_allowed("push.apple.com"));
    }
}
