use std::process::Command;

fn gatehouse(db: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .env("DATABASE_URL", db)
        .env("GATEHOUSE_BASE_DOMAIN", "portal.example.com")
        .env("RUST_LOG", "warn")
        .output()
        .expect("gatehouse runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn tenant_create_makes_a_tenant_and_refuses_bad_input_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("cli.db").display());
    let create = |slug: &str, email: &str| {
        gatehouse(
            &db,
            &[
                "tenant",
                "create",
                "--slug",
                slug,
                "--name",
                "Acme MSP",
                "--admin-email",
                email,
            ],
        )
    };
    let (ok, out) = create("acme", "Admin@Acme.com");
    assert!(ok, "{out}");
    assert!(out.contains("Created tenant `acme`"), "{out}");
    assert!(out.contains("signs in at acme.portal.example.com"), "{out}");

    let (ok, out) = create("acme", "admin@acme.com");
    assert!(!ok);
    assert!(out.contains("already taken"), "{out}");

    let (ok, out) = create("Acme!", "admin@acme.com");
    assert!(!ok);
    assert!(out.contains("invalid slug"), "{out}");

    let (ok, out) = create("beta", "not-an-email");
    assert!(!ok);
    assert!(out.contains("invalid admin email"), "{out}");
}

/// `serve` without a mail relay refuses to start and says what to set.
#[test]
fn serve_without_smtp_refuses_to_start_and_says_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("serve.db").display());
    let (ok, out) = gatehouse(&db, &["serve", "--listen", "127.0.0.1:0"]);
    assert!(!ok, "{out}");
    assert!(out.contains("SMTP_URL") && out.contains("--demo"), "{out}");
    assert!(
        !dir.path().join("serve.db").exists(),
        "nothing was created before the refusal"
    );
}

/// Runs `gatehouse` with `args`, which must refuse to start: its output. A process still
/// running after ten seconds started, and is stopped.
fn refuses_to_start(db: &str, args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .env("DATABASE_URL", db)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("gatehouse runs");
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(10) {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "gatehouse {args:?} started: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The emulator's control page and sign-in pages let whoever reaches them change the
/// directory and sign in as anyone in it; the demo seeds an admin and shows every mailed code
/// on a page. Neither starts on an address beyond this machine unless the operator says so.
#[test]
fn the_emulator_and_the_demo_stay_on_loopback_unless_told_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("demo.db").display());
    let out = refuses_to_start(&db, &["emulator", "--listen", "0.0.0.0:0"]);
    assert!(out.contains("--allow-public"), "{out}");
    let out = refuses_to_start(&db, &["serve", "--demo", "--listen", "0.0.0.0:0"]);
    assert!(out.contains("--demo-allow-public"), "{out}");
    assert!(
        !dir.path().join("demo.db").exists(),
        "nothing was created before the refusal"
    );
}

/// `--help` shows where each setting comes from, never a database password from the
/// environment.
#[test]
fn help_does_not_show_the_database_password() {
    let (_, out) = gatehouse(
        "postgres://gatehouse:dbpw-help-9@db.internal/gatehouse",
        &["serve", "--help"],
    );
    assert!(out.contains("DATABASE_URL"), "{out}");
    assert!(!out.contains("dbpw-help-9"), "{out}");
}
