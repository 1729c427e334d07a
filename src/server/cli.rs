use super::config::{Config, EntraConfig, Limits};
use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Gatehouse: passwordless onboarding and Entra ID offboarding for MSP technicians.
#[derive(Parser, Debug)]
#[command(name = "gatehouse", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

// Parsed once at start-up; the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the portal, the mobile API and the mobile app (the default).
    Serve(ServeArgs),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Reconcile Entra ID tenants now: offboard users removed or disabled in Entra.
    Reconcile(ReconcileArgs),
    /// Serve the Entra emulator (identity platform and Graph) for tests and demos.
    Emulator(EmulatorArgs),
}

#[derive(Args, Debug)]
pub struct ReconcileArgs {
    /// Only this tenant (default: every tenant whose user source is Entra ID).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Show who would be offboarded, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Args, Debug)]
pub struct EmulatorArgs {
    /// Address to listen on; point ENTRA_AUTHORITY_URL and GRAPH_BASE_URL at it.
    #[arg(long, env = "EMULATOR_LISTEN", default_value = "127.0.0.1:3100")]
    pub listen: SocketAddr,
    /// Seed file (JSON); without it the emulator serves the Contoso demo directory.
    #[arg(long)]
    pub seed: Option<PathBuf>,
    /// URL the emulator calls itself by (default http://{listen address}).
    #[arg(long, env = "EMULATOR_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Control API token (default: random, printed at start).
    #[arg(long, env = "EMULATOR_CONTROL_TOKEN", hide_env_values = true)]
    pub control_token: Option<String>,
    /// Listen on an address beyond this machine: its control page and sign-in pages let
    /// whoever reaches them change the directory and sign in as anyone in it.
    #[arg(long, env = "EMULATOR_ALLOW_PUBLIC")]
    pub allow_public: bool,
}

impl EmulatorArgs {
    /// Refuses an address beyond this machine unless `--allow-public` says so.
    pub fn check_listen(&self) -> anyhow::Result<()> {
        if !self.listen.ip().is_loopback() && !self.allow_public {
            bail!(
                "the emulator would listen on {}, beyond this machine: its control page and sign-in pages let whoever reaches them change the directory and sign in as anyone in it. Listen on 127.0.0.1 (the default), or pass --allow-public (EMULATOR_ALLOW_PUBLIC=true) on a network only you can reach.",
                self.listen
            );
        }
        Ok(())
    }
}

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Create a tenant with the local user source and an invited admin.
    Create(TenantCreateArgs),
}

#[derive(Args, Debug)]
pub struct TenantCreateArgs {
    /// Host label of the tenant: `acme` serves at acme.{base domain}.
    #[arg(long)]
    pub slug: String,
    /// Display name, shown on the login page and on the phone.
    #[arg(long)]
    pub name: String,
    /// Email of the first admin; they sign in by verifying it in the mobile app.
    #[arg(long)]
    pub admin_email: String,
    /// Base domain, only to say where the tenant's portal is.
    #[arg(long, env = "GATEHOUSE_BASE_DOMAIN", default_value = "localhost:3000")]
    pub base_domain: String,
    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(Args, Debug, Clone)]
pub struct DbArgs {
    /// sqlite://path or postgres://…
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://data/gatehouse.db",
        value_parser = database_url
    )]
    pub database_url: crate::server::config::DatabaseUrl,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Address to listen on.
    #[arg(long, env = "GATEHOUSE_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// Base domain: the mobile app is served here and tenants at {slug}.{base}.
    #[arg(long, env = "GATEHOUSE_BASE_DOMAIN", default_value = "localhost:3000")]
    pub base_domain: String,
    /// Public URL of the base domain (default http://{base domain}).
    #[arg(long, env = "GATEHOUSE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Client id of the multi-tenant Entra app registration.
    #[arg(long, env = "ENTRA_CLIENT_ID")]
    pub entra_client_id: Option<String>,
    /// Client secret of the Entra app (prefer ENTRA_CLIENT_SECRET_FILE).
    #[arg(long, env = "ENTRA_CLIENT_SECRET", hide_env_values = true, value_parser = secret)]
    pub entra_client_secret: Option<SecretString>,
    /// File holding the client secret of the Entra app.
    #[arg(long, env = "ENTRA_CLIENT_SECRET_FILE")]
    pub entra_client_secret_file: Option<PathBuf>,
    /// PEM certificate uploaded to the Entra app (preferred over a secret). Its RSA private
    /// key is read from ENTRA_CLIENT_KEY_FILE, or from this file when that is unset.
    #[arg(long, env = "ENTRA_CLIENT_CERTIFICATE_FILE")]
    pub entra_client_certificate_file: Option<PathBuf>,
    /// PEM private key (PKCS#8 or PKCS#1 RSA) of the Entra app's certificate.
    #[arg(long, env = "ENTRA_CLIENT_KEY_FILE")]
    pub entra_client_key_file: Option<PathBuf>,
    /// Client id of the second Entra app registration, the one customers consent to (JIT
    /// accounts in their tenants). It uses the certificate above when one is set.
    #[arg(long, env = "ENTRA_CUSTOMERS_CLIENT_ID")]
    pub entra_customers_client_id: Option<String>,
    /// Client secret of the customers' app (prefer ENTRA_CUSTOMERS_CLIENT_SECRET_FILE).
    #[arg(long, env = "ENTRA_CUSTOMERS_CLIENT_SECRET", hide_env_values = true, value_parser = secret)]
    pub entra_customers_client_secret: Option<SecretString>,
    /// File holding the client secret of the customers' app.
    #[arg(long, env = "ENTRA_CUSTOMERS_CLIENT_SECRET_FILE")]
    pub entra_customers_client_secret_file: Option<PathBuf>,
    #[arg(
        long,
        env = "ENTRA_AUTHORITY_URL",
        default_value = "https://login.microsoftonline.com"
    )]
    pub entra_authority_url: String,
    #[arg(
        long,
        env = "GRAPH_BASE_URL",
        default_value = "https://graph.microsoft.com"
    )]
    pub graph_base_url: String,
    /// smtps://user:pass@relay:465, or smtp://user:pass@relay:587 (STARTTLS required);
    /// `?tls=none` only for a relay on a trusted network. Required outside demo mode.
    #[arg(long, env = "SMTP_URL", hide_env_values = true, value_parser = secret)]
    pub smtp_url: Option<SecretString>,
    /// PEM certificate of a private CA that signed the relay's certificate.
    #[arg(long, env = "SMTP_CA_FILE")]
    pub smtp_ca_file: Option<PathBuf>,
    /// Sender of verification mail.
    #[arg(
        long,
        env = "GATEHOUSE_MAIL_FROM",
        default_value = "Gatehouse <no-reply@gatehouse.invalid>"
    )]
    pub mail_from: String,
    /// Demo mode: a seeded `demo` tenant, the in-process Entra emulator and the dev outbox.
    /// Only this flag (or GATEHOUSE_DEMO=true) turns it on.
    #[arg(long, env = "GATEHOUSE_DEMO", num_args = 0..=1, default_missing_value = "true")]
    pub demo: Option<bool>,
    /// Control token of the demo's emulator (default: random, printed at start).
    #[arg(long = "demo-emulator-token", env = "EMULATOR_CONTROL_TOKEN", hide_env_values = true, value_parser = secret)]
    pub demo_emulator_token: Option<SecretString>,
    /// Serve the demo on an address beyond this machine: it has a seeded admin and a page
    /// showing every mailed code, so whoever reaches it can sign in as that admin.
    #[arg(long, env = "GATEHOUSE_DEMO_ALLOW_PUBLIC")]
    pub demo_allow_public: bool,
    /// Without SMTP_URL, keep mail on /_dev/outbox (readable by anyone who reaches the base
    /// domain) for a private test install. Never on the internet.
    #[arg(long, env = "GATEHOUSE_DEV_OUTBOX")]
    pub dev_outbox: bool,
    /// Bearer token /metrics requires (default: none; /metrics answers on the base domain only).
    #[arg(long, env = "GATEHOUSE_METRICS_TOKEN", hide_env_values = true, value_parser = secret)]
    pub metrics_token: Option<SecretString>,
    /// Where the built site (pkg/, app/) lives.
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,
    /// Verification-code mails to one address per hour, from any number of phones.
    #[arg(long, env = "GATEHOUSE_CODE_MAILS_PER_ADDRESS", default_value_t = 10, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub code_mails_per_address: i64,
    /// Verification-code mails asked for from one client IP per hour.
    #[arg(long, env = "GATEHOUSE_CODE_MAILS_PER_IP", default_value_t = 30, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub code_mails_per_ip: i64,
    /// Wrong verification codes for one address per hour (across phones and resends) before
    /// confirmations of that address are locked for the rest of the hour.
    #[arg(long, env = "GATEHOUSE_CODE_FAILURES_PER_ADDRESS", default_value_t = 10, value_parser = clap::value_parser!(i64).range(1..=1_000))]
    pub code_failures_per_address: i64,
    /// New login codes (QR codes) one client IP may draw per minute, across tenants.
    #[arg(long, env = "GATEHOUSE_LOGIN_CODES_PER_IP", default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub login_codes_per_ip: u32,
    /// Phones one client IP may register per hour.
    #[arg(long, env = "GATEHOUSE_DEVICE_REGISTRATIONS_PER_IP", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub device_registrations_per_ip: u32,
    /// Phone requests about sign-ins (look up, approve, deny) and code confirmations one
    /// client IP may make per minute.
    #[arg(long, env = "GATEHOUSE_PHONE_ACTIONS_PER_IP", default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub phone_actions_per_ip: u32,
    /// Refused change-notification deliveries (forged, malformed, or of no subscription of
    /// Gatehouse) one client network may send per minute before it is answered 429 unread.
    #[arg(long, env = "GATEHOUSE_REFUSED_NOTIFICATIONS_PER_IP", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub refused_notifications_per_ip: u32,
    /// Connections one instance keeps open at once; one more is closed as soon as it is
    /// accepted. Each client must send its request's headers within 10 seconds and its body
    /// within 30.
    #[arg(long, env = "GATEHOUSE_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
    /// Proxies whose forwarding header names the client: CIDR ranges or addresses,
    /// comma-separated (`10.0.0.0/8,192.168.1.10`). From other peers it is ignored.
    #[arg(long, env = "GATEHOUSE_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
    /// The header those proxies write the client's address in, `X-Forwarded-For` or
    /// `Forwarded`: only that one is read (a proxy passes the other through as the client
    /// wrote it).
    #[arg(
        long,
        env = "GATEHOUSE_CLIENT_IP_HEADER",
        default_value = "X-Forwarded-For"
    )]
    pub client_ip_header: String,
}

/// Parses a secret flag straight into a wrapper that redacts it in `Debug`.
fn secret(raw: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(raw.to_string()))
}

fn database_url(s: &str) -> Result<crate::server::config::DatabaseUrl, String> {
    Ok(crate::server::config::DatabaseUrl::from(s))
}

impl ServeArgs {
    /// Checks the flags together and resolves `_FILE` secrets.
    pub fn into_config(self) -> anyhow::Result<Config> {
        let base_domain = self.base_domain.trim().to_ascii_lowercase();
        if base_domain.is_empty() || base_domain.contains('/') || base_domain.contains("://") {
            bail!("GATEHOUSE_BASE_DOMAIN must be a host name with an optional port, like `localhost:3000` (got `{base_domain}`)");
        }
        let public_url = match self.public_url {
            Some(u) => {
                let parsed = url::Url::parse(&u)
                    .with_context(|| format!("GATEHOUSE_PUBLIC_URL `{u}` is not a URL"))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    bail!("GATEHOUSE_PUBLIC_URL must start with http:// or https://");
                }
                u.trim_end_matches('/').to_string()
            }
            None => format!("http://{base_domain}"),
        };
        let client_secret = secret_or_file(
            "ENTRA_CLIENT_SECRET",
            self.entra_client_secret,
            self.entra_client_secret_file,
        )?;
        let customers_client_secret = secret_or_file(
            "ENTRA_CUSTOMERS_CLIENT_SECRET",
            self.entra_customers_client_secret,
            self.entra_customers_client_secret_file,
        )?;
        let client_certificate = match (
            &self.entra_client_certificate_file,
            &self.entra_client_key_file,
        ) {
            (None, Some(_)) => {
                bail!("ENTRA_CLIENT_KEY_FILE is set without ENTRA_CLIENT_CERTIFICATE_FILE")
            }
            (None, None) => None,
            (Some(cert_path), key_path) => {
                let certificate = std::fs::read_to_string(cert_path).with_context(|| {
                    format!(
                        "cannot read ENTRA_CLIENT_CERTIFICATE_FILE {}",
                        cert_path.display()
                    )
                })?;
                let key = match key_path {
                    Some(p) => std::fs::read_to_string(p).with_context(|| {
                        format!("cannot read ENTRA_CLIENT_KEY_FILE {}", p.display())
                    })?,
                    None => certificate.clone(),
                };
                let c = crate::entra::ClientCertificate::from_pem(&certificate, &key)
                    .with_context(|| {
                        format!(
                            "ENTRA_CLIENT_CERTIFICATE_FILE {} cannot be used",
                            cert_path.display()
                        )
                    })?;
                Some(std::sync::Arc::new(c))
            }
        };
        for (name, value) in [
            ("ENTRA_AUTHORITY_URL", &self.entra_authority_url),
            ("GRAPH_BASE_URL", &self.graph_base_url),
        ] {
            url::Url::parse(value).with_context(|| format!("{name} `{value}` is not a URL"))?;
        }
        if let Some(smtp) = &self.smtp_url {
            let relay = crate::server::mail::Relay::parse(smtp.expose_secret())?;
            if relay.security == crate::server::mail::Security::ClearText && relay.has_credentials()
            {
                tracing::warn!(
                    "SMTP_URL has tls=none: the relay password and every verification code cross the network in clear text"
                );
            }
        }
        if let Some(path) = &self.smtp_ca_file {
            if !path.is_file() {
                bail!("SMTP_CA_FILE {} is not a readable file", path.display());
            }
        }
        let trusted_proxies = crate::server::client_ip::parse_trusted(&self.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("GATEHOUSE_TRUSTED_PROXIES: {e}"))?;
        let client_ip_header = crate::server::client_ip::ProxyHeader::parse(&self.client_ip_header)
            .map_err(|e| anyhow::anyhow!("GATEHOUSE_CLIENT_IP_HEADER: {e}"))?;
        let demo = self.demo.unwrap_or(false);
        if demo && !self.listen.ip().is_loopback() && !self.demo_allow_public {
            bail!(
                "demo mode would listen on {}, beyond this machine: it has a seeded admin and a page showing every mailed code, so whoever reaches it can sign in as that admin. Listen on 127.0.0.1 (the default), or pass --demo-allow-public (GATEHOUSE_DEMO_ALLOW_PUBLIC=true) on a network only you can reach.",
                self.listen
            );
        }
        Ok(Config {
            database_url: self.db.database_url,
            listen: self.listen,
            base_domain,
            public_url,
            entra: EntraConfig {
                client_id: self.entra_client_id,
                client_secret,
                client_certificate,
                authority_url: self.entra_authority_url.trim_end_matches('/').to_string(),
                graph_base_url: self.graph_base_url.trim_end_matches('/').to_string(),
                customers_client_id: self.entra_customers_client_id,
                customers_client_secret,
            },
            smtp_url: self.smtp_url,
            smtp_ca_file: self.smtp_ca_file,
            mail_from: self.mail_from,
            demo,
            notify_over_http: false,
            dev_outbox: self.dev_outbox,
            demo_emulator_token: self.demo_emulator_token,
            metrics_token: self.metrics_token,
            site_root: self.site_root,
            limits: Limits {
                code_mails_per_address: self.code_mails_per_address,
                code_mails_per_ip: self.code_mails_per_ip,
                code_failures_per_address: self.code_failures_per_address,
                login_codes_per_ip: self.login_codes_per_ip,
                device_registrations_per_ip: self.device_registrations_per_ip,
                phone_actions_per_ip: self.phone_actions_per_ip,
                refused_notifications_per_ip: self.refused_notifications_per_ip,
            },
            trusted_proxies,
            client_ip_header,
            connections: crate::server::serve::Connections {
                max: self.max_connections as usize,
                ..Default::default()
            },
        })
    }
}

/// A secret given as `{name}` or read from the file `{name}_FILE`, not both.
fn secret_or_file(
    name: &str,
    value: Option<SecretString>,
    file: Option<PathBuf>,
) -> anyhow::Result<Option<SecretString>> {
    match (value, file) {
        (Some(_), Some(_)) => bail!("set {name} or {name}_FILE, not both"),
        (Some(s), None) => Ok(Some(s)),
        (None, Some(path)) => {
            let s = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {name}_FILE {}", path.display()))?;
            Ok(Some(SecretString::from(s.trim().to_string())))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_args(extra: &[&str]) -> ServeArgs {
        let mut argv = vec!["gatehouse", "serve"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).expect("flags parse").command {
            Some(Command::Serve(args)) => args,
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let args = serve_args(&[
            "--entra-client-secret",
            "s3cr3t-value",
            "--smtp-url",
            "smtp://u:pw-123@mail.example:587",
            "--database-url",
            "postgres://gatehouse:dbpw-9@db.internal/gatehouse",
        ]);
        let shown = format!("{args:?}");
        assert!(
            !shown.contains("s3cr3t-value")
                && !shown.contains("pw-123")
                && !shown.contains("dbpw-9"),
            "{shown}"
        );
        let config = args.into_config().unwrap();
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("s3cr3t-value")
                && !shown.contains("pw-123")
                && !shown.contains("dbpw-9"),
            "{shown}"
        );
    }

    #[test]
    fn bad_settings_are_refused_with_the_setting_named() {
        let err = |extra: &[&str]| serve_args(extra).into_config().unwrap_err().to_string();
        assert!(err(&["--public-url", "ftp://x"]).contains("GATEHOUSE_PUBLIC_URL"));
        assert!(err(&["--base-domain", "http://x"]).contains("GATEHOUSE_BASE_DOMAIN"));
        assert!(err(&["--smtp-url", "mail.example"]).contains("SMTP_URL"));
        assert!(err(&["--graph-base-url", "not a url"]).contains("GRAPH_BASE_URL"));
        assert!(err(&["--client-ip-header", "X-Real-IP"]).contains("GATEHOUSE_CLIENT_IP_HEADER"));
        assert!(Cli::try_parse_from(["gatehouse", "serve", "--listen", "nowhere"]).is_err());
    }

    #[test]
    fn the_demo_serves_beyond_this_machine_only_when_told() {
        let err = serve_args(&["--demo", "--listen", "0.0.0.0:3000"])
            .into_config()
            .unwrap_err()
            .to_string();
        assert!(err.contains("--demo-allow-public"), "{err}");
        assert!(
            serve_args(&["--demo", "--listen", "0.0.0.0:3000", "--demo-allow-public"])
                .into_config()
                .is_ok()
        );
        assert!(serve_args(&["--demo", "--listen", "[::1]:3000"])
            .into_config()
            .is_ok());
    }

    #[test]
    fn demo_mode_is_on_only_when_asked() {
        assert!(
            !serve_args(&[]).into_config().unwrap().demo,
            "not by default"
        );
        assert!(serve_args(&["--demo"]).into_config().unwrap().demo);
        assert!(serve_args(&["--demo", "true"]).into_config().unwrap().demo);
        assert!(!serve_args(&["--demo", "false"]).into_config().unwrap().demo);
    }

    #[test]
    fn serving_needs_a_mail_relay_unless_asked_otherwise() {
        let check = |extra: &[&str]| serve_args(extra).into_config().unwrap().check_mail();
        let err = check(&[]).unwrap_err().to_string();
        assert!(err.contains("SMTP_URL") && err.contains("--demo"), "{err}");
        assert!(check(&["--demo"]).is_ok());
        assert!(check(&["--dev-outbox"]).is_ok());
        assert!(check(&["--smtp-url", "smtps://u:p@mail.example:465"]).is_ok());
    }

    #[test]
    fn the_metrics_token_does_not_show_in_debug_output() {
        let args = serve_args(&["--metrics-token", "m3tr1cs-t0ken"]);
        assert!(!format!("{args:?}").contains("m3tr1cs-t0ken"));
        let config = args.into_config().unwrap();
        assert!(!format!("{config:?}").contains("m3tr1cs-t0ken"));
    }
}
