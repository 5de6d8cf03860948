//! A local HTTPS push sink for the benchmarks, run as a child process of the
//! benchmark's own executable (`<bench> --sink <port> <cert.der> <key.der>`, or
//! another first argument the benchmark gives [`start_as`]),
//! serving the routes each benchmark gives it.

/// Serves `app` over HTTPS (HTTP/2 and HTTP/1.1) on `port`.
pub async fn serve(port: u16, cert_path: &str, key_path: &str, app: axum::Router) {
    let acceptor = acceptor(cert_path, key_path, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    attune_tests::fake_apns::serve_https(listener, acceptor, app).await;
}

/// Serves APNs's one request over HTTPS (HTTP/2 only, as APNs) on
/// `port`, with `h2` alone: `POST /3/device/<token>` with a body is answered
/// 200, anything else 400. A sink stands in for Apple's servers, which cost
/// the sending machine nothing; this one took 8.7–8.8 µs of CPU a request
/// against 10.3–11.4 µs for [`serve`]'s hyper and axum (2026-12-04, three runs
/// of each in turn; README, "Native push"), leaving more of the two shared
/// cores to the sender measured.
#[allow(dead_code, reason = "the native push benchmark's; the others include this file too")]
pub async fn serve_apns(port: u16, cert_path: &str, key_path: &str) {
    let acceptor = acceptor(cert_path, key_path, vec![b"h2".to_vec()]);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else { return };
            let Ok(mut connection) = h2::server::handshake(tls).await else { return };
            while let Some(Ok((request, mut respond))) = connection.accept().await {
                tokio::spawn(async move {
                    let (parts, mut body) = request.into_parts();
                    let mut received = 0;
                    while let Some(Ok(chunk)) = body.data().await {
                        received += chunk.len();
                        let _ = body.flow_control().release_capacity(chunk.len());
                    }
                    let wanted = parts.method == http::Method::POST && parts.uri.path().starts_with("/3/device/");
                    let status =
                        if wanted && received > 20 { http::StatusCode::OK } else { http::StatusCode::BAD_REQUEST };
                    let _ = respond.send_response(http::Response::builder().status(status).body(()).unwrap(), true);
                });
            }
        });
    }
}

/// A TLS acceptor for the certificate and key (DER) at these paths, offering
/// `alpn`.
fn acceptor(cert_path: &str, key_path: &str, alpn: Vec<Vec<u8>>) -> tokio_rustls::TlsAcceptor {
    attune_tests::fake_apns::tls_acceptor(std::fs::read(cert_path).unwrap(), std::fs::read(key_path).unwrap(), alpn)
}

/// What a Web Push service answers when all is well: 201 to every push.
pub fn web_push_routes() -> axum::Router {
    axum::Router::new().route(
        "/push/{id}",
        axum::routing::post(|body: axum::body::Bytes| async move {
            assert!(body.len() > 100);
            axum::http::StatusCode::CREATED
        }),
    )
}

/// A sink running as a child process, with the certificate to trust it by.
pub struct RunningSink {
    pub port: u16,
    pub cert_der: Vec<u8>,
    process: attune_tests::bench_support::Proc,
    _dir: tempfile::TempDir,
}

impl RunningSink {
    /// The sink process's id, to read its CPU time.
    #[allow(dead_code, reason = "the native push benchmark's; the others include this file too")]
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

/// Starts the sink on a free port with a fresh self-signed certificate for
/// 127.0.0.1, and waits until it accepts connections.
pub fn start() -> RunningSink {
    start_as("--sink")
}

/// [`start`] with the benchmark's own first argument for the sink wanted:
/// the executable runs as that sink when started with it.
pub fn start_as(flag: &str) -> RunningSink {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let cert_der = certified.cert.der().to_vec();
    let (cert_path, key_path) = (dir.path().join("cert.der"), dir.path().join("key.der"));
    std::fs::write(&cert_path, &cert_der).unwrap();
    std::fs::write(&key_path, certified.signing_key.serialize_der()).unwrap();
    let port = attune_tests::bench_support::free_port();
    let process = attune_tests::bench_support::Proc(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([flag, &port.to_string(), cert_path.to_str().unwrap(), key_path.to_str().unwrap()])
            .spawn()
            .unwrap(),
    );
    for _ in 0..500 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    RunningSink { port, cert_der, process, _dir: dir }
}
