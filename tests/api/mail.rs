//! Mail through a relay as Microsoft 365 and most providers run one: STARTTLS required, then
//! AUTH, with a certificate from the relay's own CA (Python's aiosmtpd, see
//! support/smtp_relay.py; `scripts/setup.sh` installs it).

use crate::helpers::*;
use gatehouse::server::config::Config;
use gatehouse::server::mail::Mailer;
use secrecy::SecretString;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Relay {
    port: u16,
    child: Child,
    lines: mpsc::Receiver<String>,
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Relay {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Relay Test CA");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        let path = |name: &str| dir.path().join(name);
        std::fs::write(path("ca.pem"), ca.pem()).unwrap();
        std::fs::write(path("cert.pem"), leaf.pem()).unwrap();
        std::fs::write(path("key.pem"), leaf_key.serialize_pem()).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/api/support/smtp_relay.py"
        );
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(path("cert.pem"))
            .arg(path("key.pem"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the test relay");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let ready = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the relay starts (scripts/setup.sh installs aiosmtpd)");
        assert_eq!(ready, "READY");
        let _ = child.stdin.as_mut().map(|s| s.flush());
        Relay {
            port,
            child,
            lines,
            ca: path("ca.pem"),
            _dir: dir,
        }
    }

    fn url(&self, password: &str, query: &str) -> SecretString {
        SecretString::from(format!(
            "smtp://gatehouse:{password}@localhost:{}{query}",
            self.port
        ))
    }

    /// The next message the relay accepted, if one comes within `wait`.
    fn delivered(&self, wait: Duration) -> Option<serde_json::Value> {
        self.lines
            .recv_timeout(wait)
            .ok()
            .map(|l| serde_json::from_str(&l).unwrap())
    }
}

async fn check(relay: &Relay, tweak: impl FnOnce(&mut Config)) -> anyhow::Result<()> {
    let mut config = Config::for_tests("sqlite::memory:");
    config.smtp_url = Some(relay.url("relay-secret", ""));
    config.smtp_ca_file = Some(relay.ca.clone());
    tweak(&mut config);
    Mailer::from_config(&config)?.check().await
}

#[tokio::test]
async fn codes_reach_a_relay_that_requires_starttls_and_auth_under_its_own_ca() {
    let relay = Relay::start();
    let app = spawn_app_with(|c| {
        c.smtp_url = Some(relay.url("relay-secret", ""));
        c.smtp_ca_file = Some(relay.ca.clone());
    })
    .await;
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    let mut phone = Phone::new();
    phone.register(&app).await;
    let res = phone.request_code(&app, "admin@acme.com").await;
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    let mail = relay
        .delivered(Duration::from_secs(10))
        .expect("the relay accepted the mail");
    assert_eq!(mail["to"], serde_json::json!(["admin@acme.com"]));
    let text = mail["data"].as_str().unwrap();
    let code = text
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .expect("a code in the mail");
    let res = phone.confirm(&app, "admin@acme.com", code).await;
    assert_eq!(res.status(), 200, "the mailed code verifies the address");
    assert_eq!(
        sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM outbox")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap()
            .0,
        0,
        "nothing went to the outbox"
    );
}

#[tokio::test]
async fn a_relay_that_cannot_be_used_is_named_with_its_own_answer() {
    let relay = Relay::start();
    assert!(
        check(&relay, |_| {}).await.is_ok(),
        "the working set-up passes"
    );

    // Its CA unknown: only public CAs are trusted, so the handshake fails, and says why.
    let err = format!(
        "{:#}",
        check(&relay, |c| c.smtp_ca_file = None).await.unwrap_err()
    );
    assert!(err.contains(&format!("localhost:{}", relay.port)), "{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");

    // A wrong password: the relay's own reply (535) is in the message, the password is not.
    let err = check(&relay, |c| {
        c.smtp_url = Some(relay.url("guessed-wrong", ""))
    })
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("535"), "{err}");
    assert!(
        !err.contains("guessed-wrong") && !err.contains("relay-secret"),
        "{err}"
    );

    // Clear text asked for: this relay will not take AUTH before STARTTLS.
    assert!(check(&relay, |c| c.smtp_url =
        Some(relay.url("relay-secret", "?tls=none")))
    .await
    .is_err());

    // A send that fails delivers nothing, answers mail_failed, and leaves no code behind.
    let app = spawn_app_with(|c| {
        c.smtp_url = Some(relay.url("relay-secret", ""));
    })
    .await;
    let mut phone = Phone::new();
    phone.register(&app).await;
    let res = phone.request_code(&app, "admin@acme.com").await;
    let (status, code, _) = error_code(res).await;
    assert_eq!((status, code.as_str()), (502, "mail_failed"));
    assert!(relay.delivered(Duration::from_millis(500)).is_none());
}
