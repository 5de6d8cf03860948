//! The announcement between replicas: a change to a person is published on the
//! Redis channel `<ATTUNE_QUEUE_NAMESPACE>:person-changes` (the person's id, no
//! more), and every API process listens there and forgets that person.
//!
//! Pub/sub delivers to whoever is listening at that moment and keeps nothing, so
//! a listener that was away may have missed announcements: each time it
//! (re)subscribes it forgets everyone, and while it is away the entries'
//! lifetime alone bounds what another replica's change may leave behind.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use redis::aio::{ConnectionManager, PubSubSink, PubSubStream};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::PersonChanges;

/// Announcements received from the channel (each one forgot a person here).
pub const ANNOUNCEMENTS_RECEIVED_METRIC: &str = "attune_person_changes_received_total";
/// 1 while this process listens on the channel, 0 while it does not.
pub const LISTENING_METRIC: &str = "attune_person_changes_listening";

/// A silent connection (a cable pulled, a proxy that dropped it) is found by a
/// ping this often; the entries' lifetime covers what was missed meanwhile.
const PING_EVERY: Duration = Duration::from_secs(5);
const PING_TIMEOUT: Duration = Duration::from_secs(2);
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MOST: Duration = Duration::from_secs(5);

/// The channel of an install: its namespace, as every queue key has.
pub fn channel_name(namespace: &str) -> String {
    format!("{namespace}:person-changes")
}

/// Publishes changes on the channel, over a connection the process already has.
#[derive(Clone)]
pub struct Announcer {
    conn: ConnectionManager,
    channel: Arc<str>,
}

impl Announcer {
    pub fn new(conn: ConnectionManager, channel: String) -> Self {
        Self { conn, channel: channel.into() }
    }

    pub(super) async fn announce(&self, person: Uuid) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let _listeners: i64 =
            redis::cmd("PUBLISH").arg(&*self.channel).arg(person.to_string()).query_async(&mut conn).await?;
        Ok(())
    }
}

/// The task that listens on the channel; dropping it stops listening.
#[derive(Debug)]
pub struct Listener(JoinHandle<()>);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Listens on `channel` at `redis_url` until the returned [`Listener`] is
/// dropped, forgetting in `changes` whoever is announced; reconnects (and
/// forgets everyone) when the connection is lost. Returns once the first
/// subscription is in place, or has failed (it is then retried in the
/// background), so a replica that starts serving is already listening.
pub async fn listen(redis_url: &str, channel: String, changes: PersonChanges) -> Listener {
    let client = match redis::Client::open(redis_url) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "REDIS_URL cannot be used to listen for changes; entries expire on their own");
            return Listener(tokio::spawn(async {}));
        }
    };
    // Nothing is cached before the process serves: the first subscription
    // forgets nothing; a later one may follow missed announcements.
    let first = subscribe(&client, &channel).await.inspect(|_| now_listening());
    Listener(tokio::spawn(async move {
        let mut next = Some(first);
        let mut retry = RETRY_FIRST;
        loop {
            let attempt = match next.take() {
                Some(first) => first,
                None => subscribe(&client, &channel).await.inspect(|_| {
                    changes.forget_all_here();
                    now_listening();
                }),
            };
            match attempt {
                Ok((sink, stream)) => {
                    retry = RETRY_FIRST;
                    let why = receive(sink, stream, &changes).await;
                    metrics::gauge!(LISTENING_METRIC).set(0.0);
                    tracing::warn!(reason = %why, "stopped listening for changes made on other replicas; reconnecting");
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for changes made on other replicas; retrying");
                }
            }
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(RETRY_MOST);
        }
    }))
}

fn now_listening() {
    metrics::gauge!(LISTENING_METRIC).set(1.0);
    tracing::info!("listening for changes made on other replicas");
}

async fn subscribe(client: &redis::Client, channel: &str) -> Result<(PubSubSink, PubSubStream), String> {
    let subscribed = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok::<_, redis::RedisError>(pubsub.split())
    };
    match tokio::time::timeout(SUBSCRIBE_TIMEOUT, subscribed).await {
        Ok(Ok(split)) => Ok(split),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("timed out".to_owned()),
    }
}

/// Forgets each announced person until the connection fails; why it stopped.
async fn receive(mut sink: PubSubSink, mut stream: PubSubStream, changes: &PersonChanges) -> String {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(message) = message else {
                    return "the connection closed".to_owned();
                };
                match message.get_payload::<String>().ok().and_then(|text| text.parse::<Uuid>().ok()) {
                    Some(person) => {
                        changes.forget_here(person);
                        metrics::counter!(ANNOUNCEMENTS_RECEIVED_METRIC).increment(1);
                    }
                    None => tracing::warn!("ignored an announcement that names no person"),
                }
            }
            _ = ping.tick() => {
                match tokio::time::timeout(PING_TIMEOUT, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => return error.to_string(),
                    Err(_) => return "no answer to a ping".to_owned(),
                }
            }
        }
    }
}
