//! The seeds' load balancer flow end to end: the real `berth up` (with its in-process load
//! balancer), the real AWS CLI, and HTTP backends on 127.0.0.1 registered as `ip` targets.
//! Requests through the listener land on the right target group by path; a deregistered
//! target drains and gets no more traffic.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Berth, free_port, s};

/// A backend answering `NAME PATH` to every request, `/health` included.
struct Backend {
    port: u16,
}

impl Backend {
    fn start(name: &'static str, hits: Arc<Mutex<Vec<String>>>) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let hits = hits.clone();
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&head);
                    let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
                    if path != "/health" {
                        hits.lock().unwrap().push(name.to_string());
                    }
                    let body = format!("{name} {path}");
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        Backend { port }
    }
}

/// One GET through the listener: status and body.
fn get(port: u16, path: &str) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = (|| -> std::io::Result<(u16, String)> {
            let mut s = TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            write!(
                s,
                "GET {path} HTTP/1.1\r\nhost: seed.example.com\r\nconnection: close\r\n\r\n"
            )?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            let status = out
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
            Ok((status, body))
        })();
        match attempt {
            Ok(answer) => return answer,
            // The listener opens within a poll of the configuration.
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!("GET {path} on port {port}: {e}"),
        }
    }
}

fn counts(hits: &Arc<Mutex<Vec<String>>>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for h in hits.lock().unwrap().drain(..) {
        *out.entry(h).or_default() += 1;
    }
    out
}

#[test]
fn path_routing_health_checks_and_draining_through_berth_up() {
    let berth = Berth::start_up(vec![
        "--no-profile".into(),
        "--no-agent".into(),
        "--lb-bind".into(),
        "127.0.0.1".into(),
    ]);
    let elb = |args: &[&str]| {
        let mut all = vec!["elbv2"];
        all.extend_from_slice(args);
        berth.aws(&all)
    };
    let hits: Arc<Mutex<Vec<String>>> = Arc::default();
    let backends: Vec<Backend> = ["auth-1", "auth-2", "random-1", "random-2"]
        .into_iter()
        .map(|name| Backend::start(name, hits.clone()))
        .collect();

    let lb = elb(&[
        "create-load-balancer",
        "--name",
        "seed-alb",
        "--subnets",
        "subnet-0a",
        "subnet-0b",
    ])
    .ok();
    let lb_arn = s(&lb["LoadBalancers"][0]["LoadBalancerArn"]);
    let mut groups = Vec::new();
    for name in ["auth", "random"] {
        let tg = elb(&[
            "create-target-group",
            "--name",
            name,
            "--protocol",
            "HTTP",
            "--port",
            "80",
            "--vpc-id",
            "vpc-0seed",
            "--target-type",
            "ip",
            "--health-check-path",
            "/health",
            "--health-check-port",
            "traffic-port",
            "--health-check-interval-seconds",
            "5",
            "--health-check-timeout-seconds",
            "2",
            "--healthy-threshold-count",
            "2",
            "--unhealthy-threshold-count",
            "2",
        ])
        .ok();
        groups.push(s(&tg["TargetGroups"][0]["TargetGroupArn"]));
    }
    let (auth, random) = (groups[0].clone(), groups[1].clone());
    elb(&[
        "modify-target-group-attributes",
        "--target-group-arn",
        &auth,
        "--attributes",
        "Key=deregistration_delay.timeout_seconds,Value=5",
    ])
    .ok();
    let port = free_port();
    let listener = elb(&[
        "create-listener",
        "--load-balancer-arn",
        &lb_arn,
        "--protocol",
        "HTTP",
        "--port",
        &port.to_string(),
        "--default-actions",
        &format!("Type=forward,TargetGroupArn={auth}"),
    ])
    .ok();
    let listener_arn = s(&listener["Listeners"][0]["ListenerArn"]);
    elb(&[
        "create-rule",
        "--listener-arn",
        &listener_arn,
        "--priority",
        "10",
        "--conditions",
        "Field=path-pattern,Values=/random/*",
        "--actions",
        &format!("Type=forward,TargetGroupArn={random}"),
    ])
    .ok();
    let target = |b: &Backend| format!("Id=127.0.0.1,Port={}", b.port);
    for (arn, pair) in [(&auth, &backends[0..2]), (&random, &backends[2..4])] {
        elb(&[
            "register-targets",
            "--target-group-arn",
            arn,
            "--targets",
            &target(&pair[0]),
            &target(&pair[1]),
        ])
        .ok();
    }
    for arn in [&auth, &random] {
        elb(&["wait", "target-in-service", "--target-group-arn", arn]).ok();
        let health = elb(&["describe-target-health", "--target-group-arn", arn]).ok();
        for d in health["TargetHealthDescriptions"].as_array().unwrap() {
            assert_eq!(d["TargetHealth"]["State"], "healthy", "{health}");
            assert_eq!(
                d["HealthCheckPort"].as_str(),
                Some(d["Target"]["Port"].to_string().as_str()),
                "traffic-port is the target's port"
            );
        }
    }

    counts(&hits);
    for i in 0..8 {
        let (status, body) = get(port, &format!("/random/{i}"));
        assert_eq!(status, 200);
        assert!(body.starts_with("random-"), "{body}");
        let (status, body) = get(port, &format!("/login/{i}"));
        assert_eq!(status, 200);
        assert!(body.starts_with("auth-"), "{body}");
    }
    let seen = counts(&hits);
    assert_eq!(
        seen.values().copied().collect::<Vec<_>>(),
        [4, 4, 4, 4],
        "each group's two targets share its requests: {seen:?}"
    );

    elb(&[
        "deregister-targets",
        "--target-group-arn",
        &auth,
        "--targets",
        &target(&backends[0]),
    ])
    .ok();
    let health = elb(&[
        "describe-target-health",
        "--target-group-arn",
        &auth,
        "--targets",
        &target(&backends[0]),
    ])
    .ok();
    assert_eq!(
        health["TargetHealthDescriptions"][0]["TargetHealth"]["State"],
        "draining"
    );
    // Within a second the draining target gets nothing new.
    std::thread::sleep(Duration::from_millis(1000));
    counts(&hits);
    for i in 0..6 {
        let (status, body) = get(port, &format!("/after/{i}"));
        assert_eq!((status, body), (200, format!("auth-2 /after/{i}")));
    }
    elb(&[
        "wait",
        "target-deregistered",
        "--target-group-arn",
        &auth,
        "--targets",
        &target(&backends[0]),
    ])
    .ok();
    assert_eq!(get(port, "/random/last").0, 200);
}

/// One GET over TLS through the listener, asking for `name` and trusting only `ca`: status and
/// body.
fn https_get(port: u16, name: &str, ca: &[u8], path: &str) -> (u16, String) {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = (|| -> std::io::Result<(u16, String)> {
            let tcp = TcpStream::connect(("127.0.0.1", port))?;
            tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
            let server_name = rustls::pki_types::ServerName::try_from(name.to_string())
                .map_err(std::io::Error::other)?;
            let connection = rustls::ClientConnection::new(config.clone(), server_name)
                .map_err(std::io::Error::other)?;
            let mut tls = rustls::StreamOwned::new(connection, tcp);
            write!(
                tls,
                "GET {path} HTTP/1.1\r\nhost: {name}\r\nconnection: close\r\n\r\n"
            )?;
            let mut raw = Vec::new();
            if let Err(e) = tls.read_to_end(&mut raw) {
                // An answer without TLS's close_notify still counts when it is all there.
                if raw.is_empty() || e.kind() != std::io::ErrorKind::UnexpectedEof {
                    return Err(e);
                }
            }
            let out = String::from_utf8_lossy(&raw).into_owned();
            let status = out
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
            Ok((status, body))
        })();
        match attempt {
            Ok(answer) => return answer,
            // The listener opens within a poll of the configuration.
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!("GET https://{name}:{port}{path}: {e}"),
        }
    }
}

#[test]
fn an_https_listener_serves_a_certificate_imported_with_the_aws_cli() {
    let berth = Berth::start_up(vec![
        "--no-profile".into(),
        "--no-agent".into(),
        "--lb-bind".into(),
        "127.0.0.1".into(),
    ]);
    let hits: Arc<Mutex<Vec<String>>> = Arc::default();
    let backend = Backend::start("web", hits);
    let mut params = rcgen::CertificateParams::new(vec!["shop.example.com".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "shop.example.com");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let fileb = |url: String| url.replacen("file://", "fileb://", 1);
    let cert_file = fileb(berth.file("cert.pem", &cert.pem()));
    let key_file = fileb(berth.file("key.pem", &key.serialize_pem()));

    let imported = berth
        .aws(&[
            "acm",
            "import-certificate",
            "--certificate",
            &cert_file,
            "--private-key",
            &key_file,
        ])
        .ok();
    let cert_arn = s(&imported["CertificateArn"]);
    let described = berth
        .aws(&[
            "acm",
            "describe-certificate",
            "--certificate-arn",
            &cert_arn,
        ])
        .ok();
    assert_eq!(described["Certificate"]["DomainName"], "shop.example.com");
    assert_eq!(described["Certificate"]["Status"], "ISSUED");

    let elb = |args: &[&str]| {
        let mut all = vec!["elbv2"];
        all.extend_from_slice(args);
        berth.aws(&all)
    };
    let lb = elb(&[
        "create-load-balancer",
        "--name",
        "tls",
        "--subnets",
        "subnet-0a",
    ])
    .ok();
    let lb_arn = s(&lb["LoadBalancers"][0]["LoadBalancerArn"]);
    let tg = elb(&[
        "create-target-group",
        "--name",
        "web",
        "--protocol",
        "HTTP",
        "--port",
        "80",
        "--vpc-id",
        "vpc-0seed",
        "--target-type",
        "ip",
        "--health-check-path",
        "/health",
    ])
    .ok();
    let tg_arn = s(&tg["TargetGroups"][0]["TargetGroupArn"]);
    elb(&[
        "register-targets",
        "--target-group-arn",
        &tg_arn,
        "--targets",
        &format!("Id=127.0.0.1,Port={}", backend.port),
    ])
    .ok();
    let port = free_port();
    let listener = elb(&[
        "create-listener",
        "--load-balancer-arn",
        &lb_arn,
        "--protocol",
        "HTTPS",
        "--port",
        &port.to_string(),
        "--certificates",
        &format!("CertificateArn={cert_arn}"),
        "--default-actions",
        &format!("Type=forward,TargetGroupArn={tg_arn}"),
    ])
    .ok();
    assert_eq!(
        listener["Listeners"][0]["Certificates"][0]["CertificateArn"],
        cert_arn.as_str()
    );
    elb(&["wait", "target-in-service", "--target-group-arn", &tg_arn]).ok();

    let (status, body) = https_get(port, "shop.example.com", cert.pem().as_bytes(), "/secure");
    assert_eq!((status, body.as_str()), (200, "web /secure"));
    let in_use = berth
        .aws(&["acm", "delete-certificate", "--certificate-arn", &cert_arn])
        .fails_with("ResourceInUseException");
    assert!(in_use.contains("in use"), "{in_use}");
}
