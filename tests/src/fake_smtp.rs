//! An SMTP server for the tests: enough of RFC 5321 for a real client (`lettre`)
//! to hold a real conversation with it: the 220 greeting, EHLO/HELO, MAIL FROM,
//! RCPT TO, DATA with dot-unstuffing (RFC 5321 §4.5.2), RSET, NOOP and QUIT, with
//! real reply codes, and 503 for commands out of order. It keeps every mail it
//! accepted, and can be told to refuse the next transactions (4xx or 5xx) to show
//! retries and give-ups.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

/// One mail as the server received it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The envelope sender (MAIL FROM) and recipients (RCPT TO).
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message after dot-unstuffing, line ends as sent (CRLF).
    pub data: String,
}

impl ReceivedMail {
    /// A header's value, folded lines joined.
    pub fn header(&self, name: &str) -> Option<String> {
        let (head, _) = self.split();
        let mut value: Option<String> = None;
        let mut in_it = false;
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if in_it && let Some(v) = value.as_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                continue;
            }
            in_it = false;
            if let Some((key, rest)) = line.split_once(':')
                && key.eq_ignore_ascii_case(name)
                && value.is_none()
            {
                value = Some(rest.trim().to_owned());
                in_it = true;
            }
        }
        value
    }

    /// The body, with `\n` line ends.
    pub fn body(&self) -> String {
        self.split().1.replace("\r\n", "\n")
    }

    /// The one-time code in the body: the line that is nothing but 43 URL-safe
    /// characters (256 bits in base64url).
    pub fn code(&self) -> Option<String> {
        self.body()
            .lines()
            .map(str::trim)
            .find(|line| line.len() == 43 && line.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .map(str::to_owned)
    }

    fn split(&self) -> (String, String) {
        let data = self.data.replace("\r\n", "\n");
        match data.split_once("\n\n") {
            Some((head, body)) => (head.to_owned(), body.to_owned()),
            None => (data, String::new()),
        }
    }
}

#[derive(Default)]
struct State {
    received: Vec<ReceivedMail>,
    /// Replies for the next MAIL FROM commands instead of 250 (e.g. 451, 550).
    refusals: VecDeque<u16>,
    /// MAIL FROM commands refused so far.
    refused: usize,
}

pub struct FakeSmtp {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for FakeSmtp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeSmtp {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the fake SMTP server");
        let addr = listener.local_addr().expect("its address");
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = converse(stream, state).await;
                });
            }
        });
        Self { addr, state, task }
    }

    /// For `ATTUNE_SMTP_URL`: plain SMTP on loopback.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn received(&self) -> Vec<ReceivedMail> {
        self.state.lock().expect("fake SMTP state").received.clone()
    }

    /// Mails received for `address` (an RCPT TO of theirs).
    pub fn received_by(&self, address: &str) -> Vec<ReceivedMail> {
        self.received().into_iter().filter(|m| m.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(address))).collect()
    }

    /// Answers the next MAIL FROM with `code` (4xx: try later; 5xx: refused).
    pub fn refuse_next(&self, code: u16) {
        self.state.lock().expect("fake SMTP state").refusals.push_back(code);
    }

    /// How many transactions were refused so far.
    pub fn refused(&self) -> usize {
        self.state.lock().expect("fake SMTP state").refused
    }

    /// Waits (up to 30 s) until `address` received `count` mails; returns them.
    pub async fn wait_for(&self, address: &str, count: usize) -> Vec<ReceivedMail> {
        let what = format!("{count} mail(s) to {address}");
        crate::poll_until(&what, Duration::from_secs(30), || {
            let mails = self.received_by(address);
            std::future::ready(if mails.len() >= count { Ok(mails) } else { Err(format!("got {}", mails.len())) })
        })
        .await
    }
}

/// Asserts a mail says nothing of the service, the program or its topics, in its
/// subject, sender name or body.
pub fn assert_discreet(mail: &ReceivedMail) {
    let mut text = format!(
        "{}\n{}\n{}",
        mail.header("Subject").unwrap_or_default(),
        mail.header("From").unwrap_or_default(),
        mail.body()
    );
    // The code is random base64url: it may spell anything, and is not text.
    if let Some(code) = mail.code() {
        text = text.replace(&code, "");
    }
    let text = text.to_lowercase();
    for word in attune_shared::mail::texts::NEVER_SAID {
        assert!(!text.contains(word), "the mail says {word:?}:\n{text}");
    }
}

#[derive(Default)]
struct Transaction {
    greeted: bool,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
}

async fn converse(stream: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 fake.smtp.test ESMTP ready\r\n").await?;
    let mut t = Transaction::default();
    loop {
        let Some(line) = read_line(&mut lines).await? else { return Ok(()) };
        let upper = line.to_ascii_uppercase();
        let verb = upper.split_whitespace().next().unwrap_or_default().to_owned();
        let reply: String = match verb.as_str() {
            "EHLO" => {
                t = Transaction { greeted: true, ..Default::default() };
                "250-fake.smtp.test\r\n250-8BITMIME\r\n250 SIZE 1048576\r\n".into()
            }
            "HELO" => {
                t = Transaction { greeted: true, ..Default::default() };
                "250 fake.smtp.test\r\n".into()
            }
            "MAIL" if !upper.starts_with("MAIL FROM:") => "501 5.5.4 Syntax: MAIL FROM:<address>\r\n".into(),
            "MAIL" if !t.greeted => "503 5.5.1 EHLO first\r\n".into(),
            "MAIL" if t.mail_from.is_some() => "503 5.5.1 Nested MAIL command\r\n".into(),
            "MAIL" => {
                let refusal = {
                    let mut state = state.lock().expect("fake SMTP state");
                    let refusal = state.refusals.pop_front();
                    state.refused += usize::from(refusal.is_some());
                    refusal
                };
                match refusal {
                    Some(code) if code < 500 => format!("{code} 4.3.0 Try again later\r\n"),
                    Some(code) => format!("{code} 5.7.1 Not accepted\r\n"),
                    None => {
                        t.mail_from = Some(address(&line["MAIL FROM:".len()..]));
                        "250 2.1.0 OK\r\n".into()
                    }
                }
            }
            "RCPT" if !upper.starts_with("RCPT TO:") => "501 5.5.4 Syntax: RCPT TO:<address>\r\n".into(),
            "RCPT" if t.mail_from.is_none() => "503 5.5.1 MAIL first\r\n".into(),
            "RCPT" => {
                t.rcpt_to.push(address(&line["RCPT TO:".len()..]));
                "250 2.1.5 OK\r\n".into()
            }
            "DATA" if t.rcpt_to.is_empty() => "503 5.5.1 RCPT first\r\n".into(),
            "DATA" => {
                write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                let Some(data) = read_data(&mut lines).await? else { return Ok(()) };
                let mail = ReceivedMail {
                    mail_from: t.mail_from.take().unwrap_or_default(),
                    rcpt_to: std::mem::take(&mut t.rcpt_to),
                    data,
                };
                state.lock().expect("fake SMTP state").received.push(mail);
                "250 2.0.0 Queued\r\n".into()
            }
            "RSET" => {
                t = Transaction { greeted: t.greeted, ..Default::default() };
                "250 2.0.0 OK\r\n".into()
            }
            "NOOP" => "250 2.0.0 OK\r\n".into(),
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => "500 5.5.2 Command not recognized\r\n".into(),
        };
        write.write_all(reply.as_bytes()).await?;
    }
}

/// One command line without its CRLF; `None` at the end of the stream.
async fn read_line(lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    if lines.read_until(b'\n', &mut buf).await? == 0 {
        return Ok(None);
    }
    Ok(Some(String::from_utf8_lossy(&buf).trim_end_matches(['\r', '\n']).to_owned()))
}

/// The DATA section up to the lone `.`, with each line's leading dot-stuffing
/// undone (a line that starts with `.` arrives with one more).
async fn read_data(lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> std::io::Result<Option<String>> {
    let mut data = String::new();
    loop {
        let Some(line) = read_line(lines).await? else { return Ok(None) };
        if line == "." {
            return Ok(Some(data));
        }
        let line = line.strip_prefix('.').unwrap_or(&line);
        data.push_str(line);
        data.push_str("\r\n");
    }
}

/// `<a@b>` (with any parameters after it) → `a@b`.
fn address(argument: &str) -> String {
    let argument = argument.trim();
    match (argument.find('<'), argument.find('>')) {
        (Some(open), Some(close)) if open < close => argument[open + 1..close].to_owned(),
        _ => argument.split_whitespace().next().unwrap_or_default().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn say(stream: &mut BufReader<TcpStream>, line: &str) -> String {
        stream.get_mut().write_all(format!("{line}\r\n").as_bytes()).await.unwrap();
        reply(stream).await
    }

    /// A whole reply, multi-line ones included (`250-…` lines, then `250 …`).
    async fn reply(stream: &mut BufReader<TcpStream>) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            stream.read_line(&mut line).await.unwrap();
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    #[tokio::test]
    async fn speaks_smtp_in_order_and_unstuffs_dots() {
        let server = FakeSmtp::start().await;
        let mut stream = BufReader::new(TcpStream::connect(server.addr).await.unwrap());
        assert!(reply(&mut stream).await.starts_with("220 "));
        assert!(say(&mut stream, "MAIL FROM:<a@example.org>").await.starts_with("503 "), "EHLO first");
        let ehlo = say(&mut stream, "EHLO client.test").await;
        assert!(ehlo.starts_with("250-") && ehlo.lines().last().unwrap().starts_with("250 "), "{ehlo}");
        assert!(say(&mut stream, "RCPT TO:<b@example.org>").await.starts_with("503 "), "MAIL first");
        assert!(say(&mut stream, "DATA").await.starts_with("503 "), "RCPT first");
        assert!(say(&mut stream, "MAIL FROM:<a@example.org> BODY=8BITMIME").await.starts_with("250 "));
        assert!(say(&mut stream, "RCPT TO:<b@example.org>").await.starts_with("250 "));
        assert!(say(&mut stream, "DATA").await.starts_with("354 "));
        let queued = say(&mut stream, "Subject: dots\r\n\r\n..leading dot\r\n...two\r\nplain\r\n.").await;
        assert!(queued.starts_with("250 "), "{queued}");
        assert!(say(&mut stream, "WHAT").await.starts_with("500 "));
        server.refuse_next(451);
        assert!(say(&mut stream, "MAIL FROM:<a@example.org>").await.starts_with("451 "));
        assert!(say(&mut stream, "QUIT").await.starts_with("221 "));

        let mails = server.received();
        assert_eq!(mails.len(), 1);
        assert_eq!(
            (mails[0].mail_from.as_str(), mails[0].rcpt_to.as_slice()),
            ("a@example.org", &["b@example.org".to_owned()][..])
        );
        assert_eq!(mails[0].header("subject").as_deref(), Some("dots"));
        assert_eq!(mails[0].body(), ".leading dot\n..two\nplain\n");
        assert_eq!(server.refused(), 1);
    }
}
