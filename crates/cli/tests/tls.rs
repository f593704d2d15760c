//! The control plane's one port over TLS: the AWS CLI trusting the certificate the banner
//! names, Berth's client holding the server to the pin the banner prints (and refusing any
//! other key), join tokens carrying that pin, plain HTTP still answered, and a connection that
//! says nothing holding up no one.

mod support;

use berth_client::{Client, ClientError, Credentials, ServerPin, Trust};
use berth_model::agent_channel::TokenParts;
use support::{ACCESS_KEY, Berth, REGION, SECRET_KEY};

fn https(berth: &Berth) -> String {
    berth.endpoint.replacen("http://", "https://", 1)
}

fn pin(berth: &Berth) -> ServerPin {
    berth.banner("server pin").parse().unwrap()
}

#[test]
fn the_aws_cli_reaches_the_port_over_tls_with_the_certificate_the_banner_names() {
    let berth = Berth::start();
    let certificate = berth.banner("certificate");
    let certificate = certificate.split(' ').next().unwrap().to_owned();
    assert!(certificate.starts_with(&berth.data_dir().display().to_string()));
    assert_eq!(berth.banner("also over TLS"), https(&berth));

    let over_tls = |extra: &[&str]| {
        let mut args = vec!["ecs", "list-clusters"];
        args.extend_from_slice(extra);
        berth.aws_at(&https(&berth), &args, &[])
    };
    berth
        .aws(&["ecs", "create-cluster", "--cluster-name", "over-tls"])
        .ok();
    let listed = over_tls(&["--ca-bundle", &certificate]).ok();
    assert!(
        listed["clusterArns"][0]
            .as_str()
            .unwrap()
            .ends_with("cluster/over-tls"),
        "{listed}"
    );
    // Without the certificate the CLI cannot verify the server, and says so.
    let refused = over_tls(&[]);
    assert_ne!(refused.status, 0);
    assert!(
        refused.stderr.contains("CERTIFICATE_VERIFY_FAILED") || refused.stderr.contains("SSL"),
        "{}",
        refused.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_holds_the_server_to_its_pin() {
    let berth = Berth::start();
    let credentials = || Credentials {
        access_key_id: ACCESS_KEY.into(),
        secret_access_key: SECRET_KEY.into(),
    };
    let list = |trust: Trust| {
        let client = Client::with_trust(&https(&berth), credentials(), REGION, &trust).unwrap();
        async move {
            client
                .ecs::<_, serde_json::Value>("ListClusters", &serde_json::json!({}))
                .await
        }
    };
    let pinned = pin(&berth);
    list(Trust::Pin(pinned))
        .await
        .expect("the pinned server answers");

    let mut other = pinned.to_string();
    let last = other.pop().unwrap();
    other.push(if last == '0' { '1' } else { '0' });
    let other: ServerPin = other.parse().unwrap();
    let err = list(Trust::Pin(other)).await.unwrap_err();
    assert!(matches!(err, ClientError::Transport { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("not the one pinned"), "{text}");
    assert!(text.contains(&pinned.to_string()), "{text}");

    // A self-signed certificate is not from the system's roots.
    let err = list(Trust::SystemRoots).await.unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
}

#[test]
fn join_tokens_carry_the_pin_of_the_server_that_made_them() {
    let berth = Berth::start();
    let created = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["token", "create", "--server", &berth.endpoint])
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let token = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    let parts = TokenParts::parse(&token).unwrap_or_else(|| panic!("{token}"));
    assert_eq!(parts.server_pin, Some(pin(&berth).to_string().as_str()));
    // The hint names the https:// address the pin can be checked on.
    let hint = String::from_utf8(created.stderr).unwrap();
    assert!(
        hint.contains(&format!("--server {}", https(&berth))),
        "{hint}"
    );

    // The pin outlives a restart: the key is kept in the data directory.
    let mut berth = berth;
    let before = pin(&berth);
    berth.restart();
    assert_eq!(pin(&berth), before);
}

#[test]
fn a_connection_that_says_nothing_holds_up_no_one() {
    let berth = Berth::start();
    let _silent = std::net::TcpStream::connect(("127.0.0.1", berth.port)).unwrap();
    let mut half_handshake = std::net::TcpStream::connect(("127.0.0.1", berth.port)).unwrap();
    use std::io::Write;
    // The first bytes of a TLS record, then nothing.
    half_handshake.write_all(&[0x16, 0x03, 0x01]).unwrap();
    let listed = berth.aws(&["ecs", "list-clusters"]).ok();
    assert!(listed["clusterArns"].is_array(), "{listed}");
}
