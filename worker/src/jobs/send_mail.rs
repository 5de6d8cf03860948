//! Renders and sends one account mail. The token a mail carries is minted here,
//! in the same run that sends it (`AccountMail::render`), so none waits in the
//! queue. A transient failure (server unreachable, 4xx) is retried with back-off;
//! a permanent one (5xx, an address no mail header can hold) is dropped and
//! counted. Each retry mints a fresh token; the unsent ones expire unused.

use std::time::Duration;

use attune_shared::{
    accounts::mail::MailJob,
    jobs::Job,
    mail::{Delivered, SendError},
};

use crate::WorkerDeps;

/// Sends in all, the first included.
pub const MAX_ATTEMPTS: u32 = 5;

/// The wait before send number `sends + 1`: 30 s, doubling, at most an hour.
pub fn retry_delay(sends: u32) -> Duration {
    Duration::from_secs(30u64.saturating_mul(1 << sends.saturating_sub(1).min(7)).min(3_600))
}

#[tracing::instrument(skip_all, fields(attempt))]
pub async fn run(deps: &WorkerDeps, mail: MailJob, attempt: u32) -> anyhow::Result<()> {
    let Some(message) = deps.account_mail.render(&mail).await? else {
        count("nothing_to_send");
        return Ok(());
    };
    let sends = attempt + 1;
    match deps.account_mail.mailer().send(&message).await {
        Ok(Delivered::Smtp) => {
            tracing::info!("mail sent over SMTP");
            count("sent");
        }
        Ok(Delivered::Outbox(path)) => {
            // The file holds the mail; the log names only the file.
            tracing::info!(file = %path.display(), "mail written to the outbox (no ATTUNE_SMTP_URL)");
            count("outbox");
        }
        Err(SendError::Transient(reason)) if sends < MAX_ATTEMPTS => {
            tracing::warn!(%reason, "mail not sent; trying again later");
            deps.queue.enqueue_after(Job::SendMail { mail, attempt: sends }, retry_delay(sends)).await?;
            count("retry");
        }
        Err(error) => {
            tracing::warn!(%error, sends, "mail not sent; giving up");
            count("failed");
        }
    }
    Ok(())
}

fn count(outcome: &'static str) {
    metrics::counter!("attune_mail_total", "outcome" => outcome).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_thirty_seconds_to_an_hour() {
        let delays: Vec<u64> = (1..=9).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
    }
}
