//! Account mail delivery: SMTP through `lettre` when `ATTUNE_SMTP_URL` is set; in
//! an embedded install without it, each mail is written as an `.eml` file under
//! `<data dir>/outbox/` for the operator (or developer) to read; a scaled install
//! without it sends nothing, and the routes that need mail say so (409).
//!
//! Only the worker sends (the `send_mail` job): no request waits on an SMTP server.
//! Nothing here logs an address, a subject or a body: a mail may carry a one-time
//! token, and an address is personal data.

pub mod texts;

use std::{
    fmt,
    path::{Path, PathBuf},
    time::Duration,
};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
};
use uuid::Uuid;

use crate::config::Settings;

/// How long one SMTP conversation may take before it counts as a transient failure.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);
/// The `From` of outbox mail when no `ATTUNE_MAIL_FROM` is set (it never leaves
/// the machine).
const OUTBOX_FROM: &str = "no-reply@localhost";

/// How this install delivers mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailMode {
    Smtp,
    /// Embedded without SMTP: `.eml` files under `<data dir>/outbox/`.
    Outbox,
    /// Scaled without SMTP: workers run elsewhere (other pods), so files would
    /// be scattered where nobody reads them; no mail at all.
    Off,
}

/// `ATTUNE_SMTP_URL`, unless unset or empty (Compose and Secrets pass empty
/// values for "none").
fn smtp_url(settings: &Settings) -> Option<&str> {
    settings.smtp_url.as_ref().map(|url| url.expose().trim()).filter(|url| !url.is_empty())
}

impl MailMode {
    pub fn of(settings: &Settings) -> Self {
        match (smtp_url(settings), &settings.redis_url) {
            (Some(_), _) => Self::Smtp,
            (None, None) => Self::Outbox,
            (None, Some(_)) => Self::Off,
        }
    }

    pub fn can_send(self) -> bool {
        self != Self::Off
    }
}

/// One mail, as the worker renders it. `Debug` shows neither address nor text.
#[derive(Clone, PartialEq, Eq)]
pub struct MailMessage {
    pub to: String,
    pub subject: String,
    pub body: String,
}

impl fmt::Debug for MailMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MailMessage([redacted])")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailConfigError {
    #[error("ATTUNE_SMTP_URL is not a usable smtp:// or smtps:// URL")]
    SmtpUrl,
    #[error("ATTUNE_MAIL_FROM is required with ATTUNE_SMTP_URL (e.g. `Accounts <no-reply@example.org>`)")]
    FromMissing,
    #[error("ATTUNE_MAIL_FROM is not a mailbox like `Name <address@example.org>`")]
    FromInvalid,
}

/// Why a mail was not delivered. The texts name no address and no token.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later: the server was unreachable, timed out, or
    /// answered 4xx.
    #[error("mail not delivered, will retry: {0}")]
    Transient(String),
    /// Trying again would not help: a 5xx answer, or an address lettre cannot
    /// write.
    #[error("mail not delivered: {0}")]
    Permanent(String),
    #[error("this install sends no mail (no ATTUNE_SMTP_URL)")]
    Off,
}

/// Where a delivered mail went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    Smtp,
    Outbox(PathBuf),
}

#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
    Off,
}

#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.transport {
            Transport::Smtp(_) => "smtp",
            Transport::Outbox(_) => "outbox",
            Transport::Off => "off",
        };
        write!(f, "Mailer({kind})")
    }
}

impl Mailer {
    pub fn from_settings(settings: &Settings) -> Result<Self, MailConfigError> {
        let from =
            match (settings.mail_from.as_deref().map(str::trim).filter(|f| !f.is_empty()), MailMode::of(settings)) {
                (Some(from), _) => from.parse::<Mailbox>().map_err(|_| MailConfigError::FromInvalid)?,
                (None, MailMode::Smtp) => return Err(MailConfigError::FromMissing),
                (None, _) => OUTBOX_FROM.parse::<Mailbox>().map_err(|_| MailConfigError::FromInvalid)?,
            };
        let transport = match (smtp_url(settings), MailMode::of(settings)) {
            (Some(url), _) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|_| MailConfigError::SmtpUrl)?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build(),
            ),
            (None, MailMode::Outbox) => Transport::Outbox(settings.data_dir.join("outbox")),
            (None, _) => Transport::Off,
        };
        Ok(Self { from, transport })
    }

    pub fn can_send(&self) -> bool {
        !matches!(self.transport, Transport::Off)
    }

    /// Delivers `message`: one SMTP conversation, or one new outbox file.
    pub async fn send(&self, message: &MailMessage) -> Result<Delivered, SendError> {
        let to: Mailbox = message
            .to
            .parse()
            .map_err(|_| SendError::Permanent("the recipient address cannot be written in a mail header".into()))?;
        let mail = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(message.body.clone())
            .map_err(|e| SendError::Permanent(format!("cannot build the mail: {e}")))?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp.send(mail).await.map(|_| Delivered::Smtp).map_err(smtp_error),
            Transport::Outbox(dir) => write_outbox(dir, &mail.formatted()).await.map(Delivered::Outbox),
            Transport::Off => Err(SendError::Off),
        }
    }
}

/// Sorts an SMTP failure without its text, which may quote the recipient.
fn smtp_error(error: lettre::transport::smtp::Error) -> SendError {
    let code = error.status().map(|code| code.to_string()).unwrap_or_else(|| "no reply code".to_owned());
    if error.is_permanent() {
        SendError::Permanent(format!("the SMTP server refused it ({code})"))
    } else if error.is_transient() {
        SendError::Transient(format!("the SMTP server deferred it ({code})"))
    } else if error.is_timeout() {
        SendError::Transient("the SMTP server did not answer in time".into())
    } else {
        SendError::Transient(format!("SMTP conversation failed ({code})"))
    }
}

/// Writes one mail as a new file readable by its owner alone (0600, in a 0700
/// directory): it may carry a one-time token.
async fn write_outbox(dir: &Path, bytes: &[u8]) -> Result<PathBuf, SendError> {
    let io = |e: std::io::Error| SendError::Transient(format!("cannot write to the outbox: {}", e.kind()));
    let mut create_dir = tokio::fs::DirBuilder::new();
    create_dir.recursive(true);
    #[cfg(unix)]
    create_dir.mode(0o700);
    create_dir.create(dir).await.map_err(io)?;
    let name = format!("{}.eml", Uuid::now_v7());
    let path = dir.join(name);
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(&path).await.map_err(io)?;
    tokio::io::AsyncWriteExt::write_all(&mut file, bytes).await.map_err(io)?;
    file.sync_all().await.map_err(io)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> Settings {
        Settings::from_args(args.iter().copied()).unwrap()
    }

    #[test]
    fn the_mode_follows_smtp_and_the_queue() {
        assert_eq!(MailMode::of(&settings(&[])), MailMode::Outbox);
        assert_eq!(MailMode::of(&settings(&["--redis-url", "redis://r:6379"])), MailMode::Off);
        let smtp = settings(&["--redis-url", "redis://r:6379", "--smtp-url", "smtp://relay:25"]);
        assert_eq!(MailMode::of(&smtp), MailMode::Smtp);
        assert!(!MailMode::Off.can_send() && MailMode::Outbox.can_send() && MailMode::Smtp.can_send());
        let empty = settings(&["--redis-url", "redis://r:6379", "--smtp-url", " ", "--mail-from", ""]);
        assert_eq!(MailMode::of(&empty), MailMode::Off, "an empty value is no value");
        assert!(!Mailer::from_settings(&empty).unwrap().can_send());
    }

    #[test]
    fn smtp_needs_a_from_address_and_a_usable_url() {
        let error = Mailer::from_settings(&settings(&["--smtp-url", "smtp://relay:25"])).unwrap_err();
        assert!(matches!(error, MailConfigError::FromMissing));
        let bad_from = settings(&["--smtp-url", "smtp://relay:25", "--mail-from", "not an address"]);
        assert!(matches!(Mailer::from_settings(&bad_from).unwrap_err(), MailConfigError::FromInvalid));
        let bad_url = settings(&["--smtp-url", "http://user:hunter2@relay", "--mail-from", "a@example.org"]);
        let error = Mailer::from_settings(&bad_url).unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "the URL's credentials stay out of the message");
        let good =
            settings(&["--smtp-url", "smtps://u:p@relay.example.org", "--mail-from", "Accounts <a@example.org>"]);
        assert!(Mailer::from_settings(&good).unwrap().can_send());
    }

    #[tokio::test]
    async fn the_outbox_holds_each_mail_in_a_file_only_its_owner_reads() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::from_settings(&settings(&["--data-dir", dir.path().to_str().unwrap()])).unwrap();
        let message = MailMessage {
            to: "sam@example.org".into(),
            subject: "Hello".into(),
            body: "A line.\n.A dot line.\n".into(),
        };
        let Delivered::Outbox(path) = mailer.send(&message).await.unwrap() else { panic!("not the outbox") };
        assert_eq!(path.parent().unwrap(), dir.path().join("outbox"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("To: sam@example.org") && text.contains("Subject: Hello"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        }
        assert!(format!("{message:?}").find("sam@").is_none());
    }
}
