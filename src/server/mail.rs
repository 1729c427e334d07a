use super::db::Db;
use super::util::now;
use crate::domain::Email;
use anyhow::{bail, Context};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use std::path::Path;
use std::time::Duration;

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `smtps://`: TLS from the first byte (port 465).
    ImplicitTls,
    /// `smtp://` (the default, or `?tls=required`): STARTTLS, and nothing is sent if the
    /// relay does not offer it (port 587).
    StartTls,
    /// `smtp://…?tls=none`: clear text, said explicitly (a relay on a trusted network).
    ClearText,
}

/// The relay `SMTP_URL` names. Its `Debug` shows no password.
pub struct Relay {
    pub host: String,
    pub port: u16,
    pub security: Security,
    credentials: Option<(String, SecretString)>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .finish()
    }
}

impl std::fmt::Display for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl Relay {
    /// Reads `SMTP_URL`. Encryption is the default: `smtp://` means STARTTLS required, and
    /// only `?tls=none` sends in clear text. Errors never repeat the URL (it may hold the
    /// password).
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        let url =
            url::Url::parse(raw).map_err(|e| anyhow::anyhow!("SMTP_URL is not a URL ({e})"))?;
        let tls = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        if let Some((k, _)) = url.query_pairs().find(|(k, _)| k != "tls") {
            bail!("SMTP_URL: unknown setting `{k}` (only `tls` is understood)");
        }
        let security = match (url.scheme(), tls.as_deref()) {
            ("smtps", None) => Security::ImplicitTls,
            ("smtps", Some(_)) => {
                bail!("SMTP_URL: smtps:// is always encrypted; drop `?tls=`")
            }
            ("smtp", None | Some("required")) => Security::StartTls,
            ("smtp", Some("none")) => Security::ClearText,
            ("smtp", Some("opportunistic")) => bail!(
                "SMTP_URL: `tls=opportunistic` would send codes (and any password) in clear text to a relay that does not offer STARTTLS; use `tls=required` (the default), or `tls=none` for a relay on a trusted network"
            ),
            ("smtp", Some(other)) => {
                bail!("SMTP_URL: `tls={other}` is not one of required, none")
            }
            (other, _) => bail!("SMTP_URL must start with smtp:// or smtps:// (not {other}://)"),
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .context("SMTP_URL names no relay host")?
            .trim_matches(|c| c == '[' || c == ']')
            .to_string();
        let port = url.port().unwrap_or(match security {
            Security::ImplicitTls => 465,
            Security::StartTls => 587,
            Security::ClearText => 25,
        });
        let credentials = if url.username().is_empty() {
            None
        } else {
            let decode = |s: &str| {
                percent_decode(s).context("SMTP_URL: the user or password is not valid UTF-8")
            };
            Some((
                decode(url.username())?,
                SecretString::from(decode(url.password().unwrap_or_default())?),
            ))
        };
        Ok(Self {
            host,
            port,
            security,
            credentials,
        })
    }

    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    fn transport(
        &self,
        ca_file: Option<&Path>,
    ) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
        let tls = match self.security {
            Security::ClearText => Tls::None,
            secure => {
                let mut params = TlsParameters::builder(self.host.clone());
                if let Some(path) = ca_file {
                    let pem = std::fs::read(path)
                        .with_context(|| format!("cannot read SMTP_CA_FILE {}", path.display()))?;
                    let ca = Certificate::from_pem(&pem).with_context(|| {
                        format!("SMTP_CA_FILE {} is not a PEM certificate", path.display())
                    })?;
                    params = params.add_root_certificate(ca);
                }
                let params = params
                    .build_rustls()
                    .context("cannot set up TLS for the SMTP relay")?;
                if secure == Security::ImplicitTls {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            }
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.clone())
                .port(self.port)
                .tls(tls)
                .timeout(Some(Duration::from_secs(15)));
        if let Some((user, password)) = &self.credentials {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_string(),
            ));
        }
        Ok(builder.build())
    }
}

fn percent_decode(s: &str) -> anyhow::Result<String> {
    Ok(percent_encoding::percent_decode_str(s)
        .decode_utf8()?
        .into_owned())
}

/// Where mail goes: an SMTP relay, or the dev outbox page when `SMTP_URL` is not set.
pub enum Mailer {
    Smtp {
        relay: Relay,
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    Outbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The transport holds SMTP credentials; say only which kind this is.
        match self {
            Mailer::Smtp { from, relay, .. } => write!(f, "Mailer::Smtp({relay}, from {from})"),
            Mailer::Outbox => f.write_str("Mailer::Outbox"),
        }
    }
}

impl Mailer {
    pub fn from_config(config: &super::config::Config) -> anyhow::Result<Self> {
        match &config.smtp_url {
            None => Ok(Mailer::Outbox),
            Some(url) => {
                let relay = Relay::parse(url.expose_secret())?;
                let transport = relay.transport(config.smtp_ca_file.as_deref())?;
                let from = config
                    .mail_from
                    .parse()
                    .context("GATEHOUSE_MAIL_FROM is not a valid mailbox")?;
                Ok(Mailer::Smtp {
                    relay,
                    transport,
                    from,
                })
            }
        }
    }

    /// Connects to the relay once as a send would (TCP, TLS, AUTH) and says what failed,
    /// with the relay's own answer. The outbox always works.
    pub async fn check(&self) -> anyhow::Result<()> {
        let Mailer::Smtp {
            relay, transport, ..
        } = self
        else {
            return Ok(());
        };
        match transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => bail!("the SMTP relay {relay} did not answer NOOP"),
            Err(err) => Err(anyhow::anyhow!(
                "the SMTP relay {relay} cannot be used: {}",
                chain(&err)
            )),
        }
    }

    pub fn is_outbox(&self) -> bool {
        matches!(self, Mailer::Outbox)
    }

    /// Sends a plain-text message.
    pub async fn send(&self, db: &Db, to: &Email, subject: &str, body: &str) -> anyhow::Result<()> {
        match self {
            Mailer::Outbox => {
                sqlx::query("INSERT INTO outbox (to_addr, subject, body, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(to.as_str())
                    .bind(subject)
                    .bind(body)
                    .bind(now())
                    .execute(&db.pool)
                    .await
                    .context("cannot write to the outbox")?;
                Ok(())
            }
            Mailer::Smtp {
                transport,
                from,
                relay,
            } => {
                let message = Message::builder()
                    .from(from.clone())
                    .to(to.as_str().parse().context("recipient is not a mailbox")?)
                    .subject(subject)
                    .body(body.to_string())
                    .context("cannot build the message")?;
                // The relay's own answer goes to the log (lettre's error carries its reply
                // code and text; never the password).
                transport.send(message).await.map_err(|err| {
                    anyhow::anyhow!(
                        "the SMTP relay {relay} did not take the message: {}",
                        chain(&err)
                    )
                })?;
                Ok(())
            }
        }
    }
}

/// An error and its causes on one line: "connection error: invalid peer certificate: …".
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

/// One message of the dev outbox.
#[derive(sqlx::FromRow)]
pub struct OutboxMessage {
    pub id: i64,
    pub to_addr: String,
    pub subject: String,
    pub body: String,
    pub created_at: i64,
}

pub async fn outbox(db: &Db, limit: i64) -> anyhow::Result<Vec<OutboxMessage>> {
    Ok(sqlx::query_as::<_, OutboxMessage>(
        "SELECT id, to_addr, subject, body, created_at FROM outbox ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&db.pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encryption_is_the_default_and_clear_text_must_be_asked_for() {
        let r = Relay::parse("smtp://gh%40acme.com:p%40ss@relay.acme.com").unwrap();
        assert_eq!((r.security, r.port), (Security::StartTls, 587));
        let (user, password) = r.credentials.as_ref().unwrap();
        assert_eq!(
            (user.as_str(), password.expose_secret()),
            ("gh@acme.com", "p@ss")
        );
        let r = Relay::parse("smtps://u:p@smtp.office365.com").unwrap();
        assert_eq!((r.security, r.port), (Security::ImplicitTls, 465));
        let r = Relay::parse("smtp://u:p@smtp.office365.com:587?tls=required").unwrap();
        assert_eq!(r.security, Security::StartTls);
        let r = Relay::parse("smtp://localhost?tls=none").unwrap();
        assert_eq!(
            (r.security, r.port, r.has_credentials()),
            (Security::ClearText, 25, false)
        );
    }

    #[test]
    fn unclear_urls_are_refused_without_repeating_the_password() {
        for bad in [
            "smtp://u:hunter2@relay?tls=opportunistic",
            "smtps://u:hunter2@relay?tls=required",
            "smtp://u:hunter2@relay?tls=maybe",
            "smtp://u:hunter2@relay?timeout=3",
            "http://u:hunter2@relay",
            "smtp://u:hunter2@",
            "not a url hunter2",
        ] {
            let err = format!("{:#}", Relay::parse(bad).unwrap_err());
            assert!(err.starts_with("SMTP_URL"), "{bad}: {err}");
            assert!(!err.contains("hunter2"), "{bad}: {err}");
        }
        let r = Relay::parse("smtp://u:hunter2@relay").unwrap();
        assert!(!format!("{r:?} {r}").contains("hunter2"));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever an operator writes in SMTP_URL, a refusal never repeats the
            /// password, and neither does an accepted relay's Debug or Display.
            #[test]
            fn the_password_never_shows(
                scheme in prop_oneof![Just("smtp"), Just("smtps"), Just("http"), Just("smtp:/")],
                password in "[A-Za-z0-9]{12,24}",
                host in prop_oneof![Just(String::new()), "[a-z]{1,10}(\\.[a-z]{2,4})?"],
                port in prop_oneof![Just(String::new()), Just(":0".to_string()), Just(":99999".to_string()), (1u16..).prop_map(|p| format!(":{p}"))],
                query in prop_oneof![Just(""), Just("?tls=none"), Just("?tls=required"), Just("?tls=opportunistic"), Just("?tls=x"), Just("?timeout=3"), Just("?tls=none&x=1")],
            ) {
                let raw = format!("{scheme}://user:{password}@{host}{port}{query}");
                match Relay::parse(&raw) {
                    Ok(relay) => {
                        let shown = format!("{relay:?} {relay}");
                        prop_assert!(!shown.contains(&password), "Debug or Display shows it");
                    }
                    Err(e) => {
                        let shown = format!("{e:#}");
                        prop_assert!(!shown.contains(&password), "{}", shown);
                    }
                }
            }
        }
    }
}
