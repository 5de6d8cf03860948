//! A local HTTPS push sink for the benchmarks, run as a child process of the
//! benchmark's own executable (`<bench> --sink <port> <cert.der> <key.der>`),
//! serving the routes each benchmark gives it.

use std::sync::Arc;

/// Serves `app` over HTTPS (TLS 1.3, HTTP/2 and HTTP/1.1) on `port`.
pub async fn serve(port: u16, cert_path: &str, key_path: &str, app: axum::Router) {
    use tokio_rustls::rustls::{
        ServerConfig,
        pki_types::{CertificateDer, PrivateKeyDer},
    };
    let cert = CertificateDer::from(std::fs::read(cert_path).unwrap());
    let key = PrivateKeyDer::try_from(std::fs::read(key_path).unwrap()).unwrap();
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(tokio_rustls::rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else { return };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
        });
    }
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
    _process: attune_tests::bench_support::Proc,
    _dir: tempfile::TempDir,
}

/// Starts the sink on a free port with a fresh self-signed certificate for
/// 127.0.0.1, and waits until it accepts connections.
pub fn start() -> RunningSink {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let cert_der = certified.cert.der().to_vec();
    let (cert_path, key_path) = (dir.path().join("cert.der"), dir.path().join("key.der"));
    std::fs::write(&cert_path, &cert_der).unwrap();
    std::fs::write(&key_path, certified.signing_key.serialize_der()).unwrap();
    let port = attune_tests::bench_support::free_port();
    let process = attune_tests::bench_support::Proc(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--sink", &port.to_string(), cert_path.to_str().unwrap(), key_path.to_str().unwrap()])
            .spawn()
            .unwrap(),
    );
    for _ in 0..500 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    RunningSink { port, cert_der, _process: process, _dir: dir }
}
