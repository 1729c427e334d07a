use anyhow::Context;
use clap::Parser;
use gatehouse::domain::{UserSource, UserStatus};
use gatehouse::server::cli::{Cli, Command, TenantCommand};
use gatehouse::server::config::Config;
use gatehouse::server::db::Db;
use gatehouse::server::startup::Application;
use gatehouse::server::telemetry::init_tracing;
use gatehouse::tenants::store as tenants;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::Tenant(TenantCommand::Create(args))) => create_tenant(args).await,
        Some(Command::Reconcile(args)) => reconcile(args).await,
        Some(Command::Emulator(args)) => emulator(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: gatehouse::server::cli::ServeArgs) -> anyhow::Result<()> {
    let config: Config = args.into_config()?;
    config.check_mail()?;
    let demo = config.demo;
    let app = Application::build(config.clone()).await?;
    tracing::info!(
        "Gatehouse listens on {} (base domain {}){}",
        config.listen.ip().to_string() + ":" + &app.port().to_string(),
        config.base_domain,
        if demo {
            format!("; demo mode: open {}", config.tenant_url("demo"))
        } else {
            String::new()
        }
    );
    app.run_until_stopped(shutdown_signal()).await
}

async fn create_tenant(args: gatehouse::server::cli::TenantCreateArgs) -> anyhow::Result<()> {
    let db = Db::connect(&args.db.database_url).await?;
    let created = gatehouse::tenants::service::create(
        &db,
        &args.slug,
        &args.name,
        &args.admin_email,
        gatehouse::audit::Actor::Command("cli"),
    )
    .await;
    db.close().await;
    let tenant = created.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "Created tenant `{}` ({}). Its admin {} signs in at {}.{} by verifying that email in the Gatehouse app.",
        tenant.slug,
        tenant.name,
        args.admin_email.trim().to_ascii_lowercase(),
        tenant.slug,
        args.base_domain.trim().to_ascii_lowercase()
    );
    Ok(())
}

async fn reconcile(args: gatehouse::server::cli::ReconcileArgs) -> anyhow::Result<()> {
    use gatehouse::reconciler::{self, Outcome, Trigger};
    let config = args.serve.into_config()?;
    let entra = gatehouse::entra::EntraClient::from_config(&config.entra)?;
    let db = Db::connect(&config.database_url).await?;
    // On PostgreSQL the running portals hear of offboardings through NOTIFY.
    let bus = gatehouse::server::bus::Bus::new(db.clone());
    let tenants: Vec<(gatehouse::domain::TenantId, String)> = match &args.tenant {
        Some(slug) => {
            let t = tenants::find_by_slug(&db, slug)
                .await?
                .ok_or_else(|| anyhow::anyhow!("there is no tenant `{slug}`"))?;
            if t.user_source != UserSource::AzureAd {
                anyhow::bail!(
                    "tenant `{slug}` uses the local user source; there is nothing to reconcile"
                );
            }
            vec![(t.id, t.slug)]
        }
        None => tenants::using_source(&db, UserSource::AzureAd)
            .await?
            .into_iter()
            .map(|t| (t.id, t.slug))
            .collect(),
    };
    if tenants.is_empty() {
        println!("No tenant uses Entra ID as its user source; nothing to reconcile.");
    }
    let (mut failed, mut skipped) = (0, 0);
    for (id, slug) in tenants {
        let r = reconciler::reconcile(&db, &bus, &entra, &id, Trigger::Cli, args.dry_run).await?;
        reconciler::record_request(
            &db,
            &id,
            gatehouse::audit::Actor::Command("gatehouse reconcile (CLI)"),
            args.dry_run,
            &r,
        )
        .await?;
        println!(
            "{slug}: {} — {} Graph request(s), {} user(s) checked, {} {}{}",
            r.outcome.as_str(),
            r.graph_requests,
            r.users_checked,
            r.offboarded.len(),
            if args.dry_run || matches!(r.outcome, Outcome::Held | Outcome::KeptLastAdmin) {
                "would be offboarded"
            } else {
                UserStatus::Offboarded.as_str()
            },
            r.error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        );
        for (user, reason) in &r.offboarded {
            println!("  {user}: {reason}");
        }
        match r.outcome {
            Outcome::Failed => failed += 1,
            Outcome::Skipped => skipped += 1,
            _ => {}
        }
    }
    db.close().await;
    // A script must never take "another instance was busy" for "done".
    match (failed, skipped) {
        (0, 0) => Ok(()),
        (failed, 0) => anyhow::bail!(
            "{failed} tenant(s) could not be reconciled; nobody was offboarded there"
        ),
        (0, skipped) => anyhow::bail!(
            "{skipped} tenant(s) were not reconciled: another instance was reconciling them; run it again"
        ),
        (failed, skipped) => anyhow::bail!(
            "{failed} tenant(s) could not be reconciled (nobody was offboarded there) and {skipped} were not reconciled because another instance was reconciling them; run it again"
        ),
    }
}

async fn emulator(args: gatehouse::server::cli::EmulatorArgs) -> anyhow::Result<()> {
    use gatehouse_emulator::{Emulator, Seed};
    use secrecy::ExposeSecret;
    args.check_listen()?;
    let seed = match &args.seed {
        Some(path) => Seed::from_file(path)?,
        None => Seed::contoso(),
    };
    let emulator = match args.control_token {
        Some(token) => Emulator::with_control_token(seed, token)?,
        None => Emulator::new(seed)?,
    };
    if let Some(url) = &args.public_url {
        emulator.set_base_url(url);
    }
    let (addr, server) = emulator.spawn_until(args.listen, shutdown_signal()).await?;
    let base = emulator.base_url();
    // The operator needs these emulator credentials to configure Gatehouse, so they are
    // printed once here (to stdout, not the log).
    println!("Entra emulator listening on {addr}");
    println!("  ENTRA_AUTHORITY_URL={base}");
    println!("  GRAPH_BASE_URL={base}");
    if let Some(app) = emulator.demo_app() {
        println!("  ENTRA_CLIENT_ID={}", app.client_id);
        println!("  ENTRA_CLIENT_SECRET={}", app.secret.expose_secret());
        for uri in &app.redirect_uris {
            println!("  redirect URI: {uri}");
        }
    }
    if let Some(app) = emulator.customers_app() {
        println!("  ENTRA_CUSTOMERS_CLIENT_ID={}", app.client_id);
        println!(
            "  ENTRA_CUSTOMERS_CLIENT_SECRET={}",
            app.secret.expose_secret()
        );
        for uri in &app.redirect_uris {
            println!("  redirect URI (customers app): {uri}");
        }
    }
    println!("  control token: {}", emulator.control_token());
    println!(
        "  control page: {base}/_emulator/ui?token={}",
        emulator.control_token()
    );
    server.await.context("the emulator task failed")
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
