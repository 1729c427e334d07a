use secrecy::SecretString;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything `gatehouse serve` needs to know, resolved from flags and environment.
#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: DatabaseUrl,
    pub listen: SocketAddr,
    /// `localhost:3000`: the mobile app lives here, tenants on `{slug}.{base_domain}`.
    pub base_domain: String,
    /// `http://localhost:3000`: how phones and browsers reach the base domain.
    pub public_url: String,
    pub entra: EntraConfig,
    pub smtp_url: Option<SecretString>,
    /// A PEM CA certificate the relay's certificate may chain to (a private CA), besides the
    /// public ones.
    pub smtp_ca_file: Option<PathBuf>,
    pub mail_from: String,
    pub demo: bool,
    /// Subscribe to Graph change notifications although the public URL is plain http (the
    /// tests, whose emulator delivers to loopback). Microsoft itself delivers to https only.
    pub notify_over_http: bool,
    /// Mail without SMTP_URL goes to /_dev/outbox outside demo mode too (a private install).
    pub dev_outbox: bool,
    /// Control token of the demo's in-process emulator; random when unset.
    pub demo_emulator_token: Option<SecretString>,
    /// Bearer token /metrics requires, if any.
    pub metrics_token: Option<SecretString>,
    pub site_root: PathBuf,
    pub limits: Limits,
    /// Peers whose forwarding header names the client (`server::client_ip`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The header those proxies set: the only one read.
    pub client_ip_header: crate::server::client_ip::ProxyHeader,
    /// How many connections are open at once, and how long a client may take to send a
    /// request (`server::serve`).
    pub connections: crate::server::serve::Connections,
}

/// How much of the unauthenticated surface one address or client may use. The per-hour
/// budgets of code mails and failures are kept in the database (they guard an inbox and an
/// address, across replicas); the per-IP rates live in each replica's memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Code mails to one address, from any number of devices.
    pub code_mails_per_address: i64,
    /// Code mails asked for from one client IP.
    pub code_mails_per_ip: i64,
    /// Code confirmations for one address that may fail, across devices and resends; then
    /// confirmations of that address are locked until the hour is over.
    pub code_failures_per_address: i64,
    /// New login codes drawn by one client IP, per minute.
    pub login_codes_per_ip: u32,
    /// Phones registered from one client IP, per hour.
    pub device_registrations_per_ip: u32,
    /// Sign-in look-ups, approvals, denials and code confirmations from one client IP, per
    /// minute.
    pub phone_actions_per_ip: u32,
    /// Change-notification deliveries from one client network that may be refused per minute;
    /// then its deliveries are answered 429 unread until the minute is over.
    pub refused_notifications_per_ip: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            code_mails_per_address: 10,
            code_mails_per_ip: 30,
            code_failures_per_address: 10,
            login_codes_per_ip: 120,
            device_registrations_per_ip: 20,
            phone_actions_per_ip: 120,
            refused_notifications_per_ip: 60,
        }
    }
}

#[derive(Clone, Debug)]
pub struct EntraConfig {
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    /// Preferred over the secret when both are set.
    pub client_certificate: Option<std::sync::Arc<crate::entra::ClientCertificate>>,
    pub authority_url: String,
    pub graph_base_url: String,
    /// The second app registration, the one customers consent to (issue 29): it makes and
    /// ends technicians' accounts, so the MSP's own tenant never grants those permissions.
    /// It signs in with the certificate above when there is one (upload it to both apps),
    /// else with its own secret.
    pub customers_client_id: Option<String>,
    pub customers_client_secret: Option<SecretString>,
}

impl Config {
    /// `serve` refuses to start without a mail relay: verification codes would sit on a page
    /// anyone can read. Demo mode and `--dev-outbox` say that is meant.
    pub fn check_mail(&self) -> anyhow::Result<()> {
        if self.smtp_url.is_none() && !self.demo && !self.dev_outbox {
            anyhow::bail!(
                "SMTP_URL is not set, so verification codes could reach nobody but a page anyone can read. \
                 Set SMTP_URL (smtps://user:pass@relay:465, or smtp://…?tls=required), or run \
                 `gatehouse serve --demo` for the demo, or add --dev-outbox (GATEHOUSE_DEV_OUTBOX=true) \
                 for a private test install."
            );
        }
        Ok(())
    }

    /// Where Graph delivers change notifications and lifecycle events, when Gatehouse can
    /// receive them: its public URL is https (as Microsoft requires), or the demo's
    /// emulator delivers to loopback.
    pub fn notification_urls(&self) -> Option<(String, String)> {
        let public = self.public_url.trim_end_matches('/');
        (self.secure_cookies() || self.demo || self.notify_over_http).then(|| {
            (
                format!("{public}/api/entra/notifications"),
                format!("{public}/api/entra/lifecycle"),
            )
        })
    }

    /// True when the public URL is https, so cookies must carry `Secure`.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// The scheme browsers use to reach tenant hosts (`http` or `https`).
    pub fn scheme(&self) -> &str {
        if self.secure_cookies() {
            "https"
        } else {
            "http"
        }
    }

    /// `http://acme.localhost:3000`: the address of a tenant's portal.
    pub fn tenant_url(&self, slug: &str) -> String {
        format!("{}://{}.{}", self.scheme(), slug, self.base_domain)
    }

    /// The host name part of the base domain, without a port.
    pub fn base_host(&self) -> &str {
        super::util::strip_port(&self.base_domain)
    }

    /// A configuration for tests and tools: a given database, port 0, no Entra, no SMTP.
    pub fn for_tests(database_url: impl Into<DatabaseUrl>) -> Self {
        Self {
            database_url: database_url.into(),
            listen: "127.0.0.1:0".parse().expect("literal address"),
            base_domain: "localhost".into(),
            public_url: "http://localhost".into(),
            entra: EntraConfig {
                client_id: None,
                client_secret: None,
                client_certificate: None,
                authority_url: "https://login.microsoftonline.com".into(),
                graph_base_url: "https://graph.microsoft.com".into(),
                customers_client_id: None,
                customers_client_secret: None,
            },
            smtp_url: None,
            smtp_ca_file: None,
            mail_from: "Gatehouse <no-reply@gatehouse.invalid>".into(),
            demo: false,
            notify_over_http: false,
            dev_outbox: false,
            demo_emulator_token: None,
            metrics_token: None,
            site_root: PathBuf::from("target/site"),
            limits: Limits::default(),
            trusted_proxies: Vec::new(),
            client_ip_header: Default::default(),
            connections: Default::default(),
        }
    }
}

/// A database URL. Its password never shows in `Debug` output (nor, through `--help`, on a
/// screen): `postgres://gatehouse:***@db/gatehouse`.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(Some("***"));
                u.to_string()
            }
            Ok(_) => self.0.clone(),
            Err(_) => "[a database URL that does not parse]".into(),
        }
    }
}

impl std::ops::Deref for DatabaseUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<String> for DatabaseUrl {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for DatabaseUrl {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_password_never_shows_in_debug_output() {
        let url = DatabaseUrl::from("postgres://gatehouse:hunter2@db.internal:5432/gatehouse");
        let shown = format!("{url:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("gatehouse:***@db.internal"), "{shown}");
        assert_eq!(
            url.as_str(),
            "postgres://gatehouse:hunter2@db.internal:5432/gatehouse"
        );
        let sqlite = DatabaseUrl::from("sqlite://data/gatehouse.db");
        assert!(format!("{sqlite:?}").contains("sqlite://data/gatehouse.db"));
    }
}
