//! The server's TLS identity, and the HTTP port's two ways in.
//!
//! The one port answers TLS and plain HTTP alike: a connection whose first byte opens a TLS
//! handshake (0x16) is served over TLS, any other in the clear. So `http://` endpoints keep
//! working, while agents reach the server at `https://` and hold it to its identity.
//!
//! The identity is the user's certificate chain and key ([`TlsSource::Files`]), or one made at
//! first start and kept in `tls/` in the data directory ([`TlsSource::Generated`]): a
//! self-signed certificate for localhost, this host's name, the listen address and any extra
//! names. Deleting `tls/cert.pem` re-issues it, for the names configured then, with the same
//! key. The key is what the identity is: the [`Identity::pin`] is the hex SHA-256 of the
//! certificate's SubjectPublicKeyInfo, and join tokens carry it
//! (`berth_model::agent_channel::TokenParts`).
//!
//! A connection gets 10 seconds to send its first byte and finish a handshake; handshakes run
//! beside the accept loop, so a slow one holds up no one else.

use crate::config::{Config, TlsSource};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The directory, in the data directory, of a generated identity.
pub const GENERATED_DIR: &str = "tls";
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The first byte of a TLS record that carries a handshake.
const TLS_HANDSHAKE: u8 = 0x16;

/// The certificate the server presents and what identifies it.
pub struct Identity {
    pub server_config: Arc<ServerConfig>,
    /// The hex SHA-256 of the certificate's SubjectPublicKeyInfo.
    pub pin: String,
    /// The certificate chain's PEM file: clients such as the AWS CLI trust the server with it
    /// (`--ca-bundle`).
    pub certificate_path: PathBuf,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("pin", &self.pin)
            .field("certificate_path", &self.certificate_path)
            .finish_non_exhaustive()
    }
}

/// The hex SHA-256 of a DER certificate's SubjectPublicKeyInfo.
pub fn pin_of(certificate: &[u8]) -> Result<String, String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate)
        .map_err(|e| format!("the certificate does not parse: {e}"))?;
    Ok(hex::encode(Sha256::digest(
        parsed.tbs_certificate.subject_pki.raw,
    )))
}

/// Loads the configured identity, making (and keeping) a generated one when there is none yet.
pub fn load(config: &Config) -> Result<Identity, String> {
    let (certificate_path, key_path) = match &config.tls {
        TlsSource::Files { certificate, key } => (certificate.clone(), key.clone()),
        TlsSource::Generated { names } => {
            let dir = config.data_dir.join(GENERATED_DIR);
            let paths = (dir.join("cert.pem"), dir.join("key.pem"));
            if !paths.0.exists() {
                let names = subject_names(config.listen, names);
                generate(&paths.0, &paths.1, &names)?;
            }
            paths
        }
    };
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| format!("could not read {}: {e}", path.display()))
    };
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&read(&certificate_path)?)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{} does not read as PEM: {e}", certificate_path.display()))?;
    let leaf = chain
        .first()
        .ok_or_else(|| format!("{} holds no certificate", certificate_path.display()))?;
    let pin = pin_of(leaf)?;
    let key = PrivateKeyDer::from_pem_slice(&read(&key_path)?)
        .map_err(|e| format!("{} does not read as a PEM key: {e}", key_path.display()))?;
    let mut server_config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| {
                format!(
                    "the key {} does not serve the certificate {}: {e}",
                    key_path.display(),
                    certificate_path.display()
                )
            })?;
    server_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Identity {
        server_config: Arc::new(server_config),
        pin,
        certificate_path,
    })
}

/// The names a generated certificate is valid for.
fn subject_names(listen: SocketAddr, extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        names.push(host.trim().to_owned());
    }
    if !listen.ip().is_unspecified() {
        names.push(listen.ip().to_string());
    }
    names.extend(extra.iter().cloned());
    names.retain(|n| !n.is_empty());
    names.sort();
    names.dedup();
    names
}

/// Writes a self-signed certificate for `names`, under the key at `key_path` (made first when
/// there is none; readable by the owner only).
fn generate(certificate_path: &Path, key_path: &Path, names: &[String]) -> Result<(), String> {
    let failed = |what: &str, e: &dyn std::fmt::Display| format!("could not {what}: {e}");
    if let Some(dir) = key_path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| failed(&format!("create {}", dir.display()), &e))?;
    }
    let key = match std::fs::read_to_string(key_path) {
        Ok(pem) => rcgen::KeyPair::from_pem(&pem)
            .map_err(|e| failed(&format!("read the key {}", key_path.display()), &e))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let key = rcgen::KeyPair::generate().map_err(|e| failed("make a key", &e))?;
            write_private(key_path, key.serialize_pem().as_bytes())
                .map_err(|e| failed(&format!("write {}", key_path.display()), &e))?;
            key
        }
        Err(e) => return Err(failed(&format!("read {}", key_path.display()), &e)),
    };
    let mut params = rcgen::CertificateParams::new(names.to_vec())
        .map_err(|e| failed("use the certificate's names", &e))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Berth control plane");
    // A self-signed trust anchor, as `openssl req -x509` makes: clients that trust the file
    // (the AWS CLI's --ca-bundle) accept it.
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let certificate = params
        .self_signed(&key)
        .map_err(|e| failed("sign the certificate", &e))?;
    std::fs::write(certificate_path, certificate.pem())
        .map_err(|e| failed(&format!("write {}", certificate_path.display()), &e))
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

/// A connection to the HTTP port, in the clear or over TLS.
pub enum Connection {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// The HTTP port: accepts TCP connections and hands them on once it knows how they speak.
pub struct DualListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(Connection, SocketAddr)>,
    accepting: tokio::task::JoinHandle<()>,
}

impl DualListener {
    pub fn new(listener: TcpListener, identity: &Identity) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(identity.server_config.clone());
        let (sender, ready) = mpsc::channel(64);
        let accepting = tokio::spawn(accept_loop(listener, acceptor, sender));
        Ok(DualListener {
            local,
            ready,
            accepting,
        })
    }
}

impl Drop for DualListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(Connection, SocketAddr)>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!("accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (acceptor, ready) = (acceptor.clone(), ready.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, recognize(stream, &acceptor)).await {
                Ok(Ok(connection)) => {
                    let _ = ready.send((connection, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, "connection dropped before serving: {e}"),
                Err(_) => tracing::debug!(%peer, "connection dropped: no request within 10 s"),
            }
        });
    }
}

/// Waits for the first byte and completes a TLS handshake when it opens one.
async fn recognize(stream: TcpStream, acceptor: &TlsAcceptor) -> io::Result<Connection> {
    let mut first = [0u8; 1];
    if stream.peek(&mut first).await? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    if first[0] == TLS_HANDSHAKE {
        Ok(Connection::Tls(Box::new(acceptor.accept(stream).await?)))
    } else {
        Ok(Connection::Plain(stream))
    }
}

impl axum::serve::Listener for DualListener {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Connection, SocketAddr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept loop ends only when aborted, that is when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Connection::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Connection::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Connection::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(s) => Pin::new(s).poll_flush(cx),
            Connection::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Connection::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Connection::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Connection::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Connection::Plain(s) => s.is_write_vectored(),
            Connection::Tls(s) => s.is_write_vectored(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_identity_is_kept_and_reissued_with_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new("127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf());
        config.tls = TlsSource::Generated {
            names: vec!["berth.example".into()],
        };
        let first = load(&config).unwrap();
        let pem = std::fs::read(&first.certificate_path).unwrap();
        let again = load(&config).unwrap();
        assert_eq!(again.pin, first.pin);
        assert_eq!(std::fs::read(&again.certificate_path).unwrap(), pem);
        use std::os::unix::fs::PermissionsExt;
        let key = dir.path().join(GENERATED_DIR).join("key.pem");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        // A deleted certificate comes back for new names, under the same key and pin.
        std::fs::remove_file(&first.certificate_path).unwrap();
        config.tls = TlsSource::Generated {
            names: vec!["other.example".into()],
        };
        let reissued = load(&config).unwrap();
        assert_eq!(reissued.pin, first.pin);
        let der = CertificateDer::from_pem_file(&reissued.certificate_path).unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
        let names = format!("{:?}", parsed.subject_alternative_name().unwrap().unwrap());
        assert!(names.contains("other.example"), "{names}");
        assert!(names.contains("localhost"), "{names}");
        assert!(!names.contains("berth.example"), "{names}");
    }

    #[test]
    fn files_that_do_not_make_an_identity_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new("127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf());
        let certificate = dir.path().join("c.pem");
        let key = dir.path().join("k.pem");
        config.tls = TlsSource::Files {
            certificate: certificate.clone(),
            key: key.clone(),
        };
        let missing = load(&config).unwrap_err();
        assert!(missing.contains("c.pem"), "{missing}");

        let made = rcgen::generate_simple_self_signed(vec!["a.example".into()]).unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        std::fs::write(&certificate, made.cert.pem()).unwrap();
        std::fs::write(&key, other.serialize_pem()).unwrap();
        let mismatch = load(&config).unwrap_err();
        assert!(mismatch.contains("does not serve"), "{mismatch}");

        std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
        let identity = load(&config).unwrap();
        assert_eq!(identity.pin, pin_of(made.cert.der()).unwrap());
        assert_eq!(identity.certificate_path, certificate);
    }
}
