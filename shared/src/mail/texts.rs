//! What account mail says. Discreet by rule: a mail may be read over someone's
//! shoulder, on a shared computer or on a lock screen, so no subject or body
//! names the service, the program or anything it is about. Plain ASCII in short
//! lines, so every mail goes out as 7-bit text with nothing re-encoded.

use super::MailMessage;

/// How long a password-reset token works, in words (the rule is
/// `accounts::one_time::RESET_TTL`).
const RESET_VALIDITY: &str = "one hour";
const VERIFY_VALIDITY: &str = "two days";

pub fn password_reset(to: &str, token: &str) -> MailMessage {
    MailMessage {
        to: to.to_owned(),
        subject: "Your password reset code".into(),
        body: format!(
            "Hello,\n\
             \n\
             Someone asked to reset the password of the account that signs in\n\
             with this address. If that was you, enter this code in the app\n\
             within {RESET_VALIDITY}:\n\
             \n\
             {token}\n\
             \n\
             The code works once. Setting a new password signs the account out\n\
             on every device.\n\
             \n\
             If it was not you, you can ignore this message: the password stays\n\
             as it is.\n"
        ),
    }
}

pub fn verify_email(to: &str, token: &str) -> MailMessage {
    MailMessage {
        to: to.to_owned(),
        subject: "Please confirm your email address".into(),
        body: format!(
            "Hello,\n\
             \n\
             To confirm that this address is yours, enter this code in the app\n\
             within {VERIFY_VALIDITY}:\n\
             \n\
             {token}\n\
             \n\
             If you did not give this address to anyone, you can ignore this\n\
             message.\n"
        ),
    }
}

/// To the old address, after the sign-in email changed. It does not say the new
/// address: whoever reads the old mailbox learns only that it changed.
pub fn email_changed(to: &str) -> MailMessage {
    MailMessage {
        to: to.to_owned(),
        subject: "Your sign-in email was changed".into(),
        body: "Hello,\n\
               \n\
               The account that signed in with this address now uses another\n\
               one, and this address no longer signs in to it.\n\
               \n\
               If that was you, there is nothing to do.\n\
               \n\
               If it was not, someone who knows your password changed it: sign\n\
               in with your password, set this address again, then change the\n\
               password and sign out your other devices in the app's settings.\n"
            .into(),
    }
}

/// Words no account mail may contain: the service, the program and its topics.
/// The tests read every mail sent against this list.
pub const NEVER_SAID: &[&str] = &[
    "attune",
    "closer",
    "intima",
    "program",
    "step",
    "partner",
    "couple",
    "relationship",
    "trauma",
    "therap",
    "sex",
    "touch",
    "body",
    "vulnerab",
    "boundar",
    "journal",
    "check-in",
    "reminder",
    "reflection",
    "mood",
    "anxiety",
    "distress",
    "crisis",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_is_discreet_ascii_in_short_lines() {
        let token = "x".repeat(43);
        for mail in [
            password_reset("a@example.org", &token),
            verify_email("a@example.org", &token),
            email_changed("a@example.org"),
        ] {
            let text = format!("{}\n{}", mail.subject, mail.body).to_lowercase();
            for word in NEVER_SAID {
                assert!(!text.contains(word), "{word:?} in {text}");
            }
            assert!(text.is_ascii());
            assert!(text.lines().all(|line| line.len() <= 76), "{text}");
        }
    }
}
