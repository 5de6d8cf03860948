//! HTTP/2 connections to one APNs origin, driven with `h2` directly.
//!
//! What reqwest did for APNs, and this keeps: the host is resolved with the
//! system resolver and connected to with hyper-util's `HttpConnector` (the one
//! reqwest wraps: happy eyeballs, `TCP_NODELAY`, keepalive after 60 s), within
//! [`CONNECT_TIMEOUT`] for TCP, TLS and the HTTP/2 preface together; TLS is
//! rustls with ring (or the process's installed provider), Mozilla's roots
//! (webpki-roots) plus the test roots, ALPN `h2`; HTTP/2 with prior knowledge
//! (APNs speaks nothing else), server push off, hyper's window and buffer
//! sizes; a connection idle for 90 s is let go. Plain `http` is only reachable
//! when the push policy allows it (tests), as h2c with prior knowledge.
//!
//! [`APNS_CONNECTIONS`] connections are kept and taken in turn; each is opened
//! on first use and again after it closed (Apple's GOAWAY, a reset, an error).

use std::{
    error::Error as StdError,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use h2::client::SendRequest;
use http::{
    Uri,
    uri::{Authority, PathAndQuery, Scheme},
};
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{
    TlsConnector,
    rustls::{
        self, ClientConfig, RootCertStore,
        pki_types::{CertificateDer, ServerName},
    },
};
use url::{Host, Url};

use super::{coalesce::Coalescing, send::CONNECT_TIMEOUT};

/// HTTP/2 connections per APNs host. Apple: "You can establish multiple
/// connections to APNs servers to improve performance"; one connection's
/// streams all pass through one connection task on each side, so a few
/// connections let a busy worker use more than one core.
pub const APNS_CONNECTIONS: usize = 4;
/// A connection nothing was sent on for this long (checked as often) is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
// hyper's HTTP/2 client defaults (what reqwest used).
const CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const MAX_FRAME_SIZE: u32 = 16 * 1024;
const MAX_HEADER_LIST_SIZE: u32 = 16 * 1024;
const MAX_SEND_BUFFER_SIZE: usize = 1024 * 1024;
const INITIAL_MAX_SEND_STREAMS: usize = 100;

pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

/// The TLS client configuration every APNs connection uses: the process's
/// crypto provider (ring unless one was installed), TLS 1.2 and 1.3, Mozilla's
/// roots and `extra_roots` (DER), ALPN `h2`.
pub(crate) fn tls_config(extra_roots: &[Vec<u8>]) -> Result<Arc<ClientConfig>, rustls::Error> {
    let mut roots = RootCertStore::empty();
    for der in extra_roots {
        roots.add(CertificateDer::from(der.clone()))?;
    }
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// The connections to one origin (scheme, host and port).
pub(crate) struct Origin {
    scheme: Scheme,
    authority: Authority,
    /// `scheme://authority/`, what the TCP connector resolves.
    connect_to: Uri,
    /// `None` for plain http (only when the policy allows it).
    tls: Option<(TlsConnector, ServerName<'static>)>,
    tcp: HttpConnector,
    slots: Box<[Arc<Slot>]>,
    next: AtomicUsize,
}

#[derive(Default)]
struct Slot {
    current: Mutex<Option<Live>>,
    /// One connect at a time per slot; the others wait for its result.
    connecting: tokio::sync::Mutex<()>,
    /// Requests started on this slot, for the idle check.
    uses: AtomicU64,
    ids: AtomicU64,
}

#[derive(Clone)]
struct Live {
    send: SendRequest<Bytes>,
    /// Set when the connection task ended (GOAWAY, reset, error, idle).
    closed: Arc<AtomicBool>,
    id: u64,
}

/// Which connection a checkout gave, for [`Origin::failed`].
pub(crate) struct Lease {
    slot: Arc<Slot>,
    id: u64,
}

impl Origin {
    /// The origin of `url` (http or https, as the policy checked it).
    pub(crate) fn new(url: &Url, tls: &Arc<ClientConfig>) -> Result<Self, BoxError> {
        // As reqwest turned a `Url` into hyper's `Uri`.
        let uri = Uri::try_from(url.as_str())?;
        let scheme = uri.scheme().cloned().ok_or("no scheme")?;
        let authority = uri.authority().cloned().ok_or("no host")?;
        let tls = match url.scheme() {
            "https" => {
                let name = match url.host().ok_or("no host")? {
                    Host::Domain(domain) => ServerName::try_from(domain.to_owned())?,
                    Host::Ipv4(ip) => ServerName::IpAddress(std::net::IpAddr::V4(ip).into()),
                    Host::Ipv6(ip) => ServerName::IpAddress(std::net::IpAddr::V6(ip).into()),
                };
                Some((TlsConnector::from(tls.clone()), name))
            }
            "http" => None,
            other => return Err(format!("unsupported scheme {other}").into()),
        };
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_keepalive(Some(TCP_KEEPALIVE));
        tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let connect_to =
            Uri::builder().scheme(scheme.clone()).authority(authority.clone()).path_and_query("/").build()?;
        Ok(Self {
            scheme,
            authority,
            connect_to,
            tls,
            tcp,
            slots: (0..APNS_CONNECTIONS).map(|_| Arc::default()).collect(),
            next: AtomicUsize::new(0),
        })
    }

    /// `path` on this origin.
    pub(crate) fn uri(&self, path: PathAndQuery) -> Result<Uri, http::Error> {
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(path);
        Ok(Uri::from_parts(parts)?)
    }

    /// The next connection in turn, opened if it is not open.
    pub(crate) async fn checkout(&self) -> Result<(SendRequest<Bytes>, Lease), BoxError> {
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let slot = &self.slots[turn];
        slot.uses.fetch_add(1, Ordering::Relaxed);
        if let Some(live) = slot.live() {
            return Ok((live.send, Lease { slot: slot.clone(), id: live.id }));
        }
        let _connecting = slot.connecting.lock().await;
        if let Some(live) = slot.live() {
            return Ok((live.send, Lease { slot: slot.clone(), id: live.id }));
        }
        let live = tokio::time::timeout(CONNECT_TIMEOUT, self.connect(slot))
            .await
            .map_err(|_| BoxError::from("connect timed out"))??;
        *slot.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(live.clone());
        Ok((live.send, Lease { slot: slot.clone(), id: live.id }))
    }

    /// The connection `checkout` gave failed before the request left: it is
    /// dropped, and the next checkout of its turn opens a new one.
    pub(crate) fn failed(lease: &Lease) {
        lease.slot.forget(lease.id);
    }

    async fn connect(&self, slot: &Arc<Slot>) -> Result<Live, BoxError> {
        let tcp = tower_service::Service::call(&mut self.tcp.clone(), self.connect_to.clone()).await?.into_inner();
        let id = slot.ids.fetch_add(1, Ordering::Relaxed);
        let closed = Arc::new(AtomicBool::new(false));
        let send = match &self.tls {
            Some((tls, name)) => {
                let stream = tls.connect(name.clone(), tcp).await?;
                handshake(stream, closed.clone()).await?
            }
            None => handshake(tcp, closed.clone()).await?,
        };
        tokio::spawn(reap_when_idle(Arc::downgrade(slot), id, closed.clone()));
        Ok(Live { send, closed, id })
    }
}

impl Slot {
    fn live(&self) -> Option<Live> {
        let current = self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        current.as_ref().filter(|live| !live.closed.load(Ordering::Acquire)).cloned()
    }

    /// Drops connection `id` if it is still this slot's; once the requests on it
    /// are done, h2 closes it (GOAWAY) as no handle to it is left.
    fn forget(&self, id: u64) {
        let mut current = self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if current.as_ref().is_some_and(|live| live.id == id) {
            *current = None;
        }
    }
}

/// Opens HTTP/2 over `io` and runs the connection on its own task; its writes
/// are gathered ([`Coalescing`]).
async fn handshake<T>(io: T, closed: Arc<AtomicBool>) -> Result<SendRequest<Bytes>, h2::Error>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (send, connection) = h2::client::Builder::new()
        .initial_max_send_streams(INITIAL_MAX_SEND_STREAMS)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME_SIZE)
        .max_header_list_size(MAX_HEADER_LIST_SIZE)
        .max_send_buffer_size(MAX_SEND_BUFFER_SIZE)
        .enable_push(false)
        .handshake(Coalescing::new(io))
        .await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "APNs connection closed");
        }
        closed.store(true, Ordering::Release);
    });
    Ok(send)
}

/// Lets connection `id` go once nothing was sent on its slot for
/// [`IDLE_TIMEOUT`]; ends when the connection has closed.
async fn reap_when_idle(slot: std::sync::Weak<Slot>, id: u64, closed: Arc<AtomicBool>) {
    let mut seen = slot.upgrade().map(|slot| slot.uses.load(Ordering::Relaxed));
    loop {
        tokio::time::sleep(IDLE_TIMEOUT).await;
        let Some(slot) = slot.upgrade() else { return };
        if closed.load(Ordering::Acquire) {
            return;
        }
        let uses = slot.uses.load(Ordering::Relaxed);
        if seen == Some(uses) {
            slot.forget(id);
            return;
        }
        seen = Some(uses);
    }
}
