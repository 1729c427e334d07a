//! `gatehouse emulator` as an operator runs it.

use gatehouse_emulator::CONTOSO_TENANT_ID;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Kills the emulator process when the test ends, even on a failed assertion.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_emulator_command_prints_what_gatehouse_needs_and_serves_contoso() {
    let child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args([
            "emulator",
            "--listen",
            "127.0.0.1:0",
            "--control-token",
            "cli-token",
        ])
        .env_remove("EMULATOR_PUBLIC_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the gatehouse binary starts");
    let mut running = Running(child);
    let stdout = running.0.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap_or_default();
            let done = line.contains("control page");
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    });
    let lines = tokio::time::timeout(std::time::Duration::from_secs(30), lines)
        .await
        .expect("the emulator prints its settings within 30 s")
        .unwrap();
    let value = |key: &str| {
        lines
            .iter()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(&format!("{key}="))
                    .map(str::to_string)
            })
            .unwrap_or_else(|| panic!("{key} printed in {lines:?}"))
    };
    assert_eq!(value("ENTRA_CLIENT_ID"), gatehouse_emulator::DEMO_CLIENT_ID);
    assert!(!value("ENTRA_CLIENT_SECRET").is_empty());
    assert!(lines.iter().any(
        |l| l.contains("redirect URI: http://localhost:3000/adminportal/user-source/callback")
    ));
    let base = value("ENTRA_AUTHORITY_URL");
    assert_eq!(base, value("GRAPH_BASE_URL"));
    let config: Value = reqwest::get(format!(
        "{base}/contoso.com/v2.0/.well-known/openid-configuration"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(config["issuer"], format!("{base}/{CONTOSO_TENANT_ID}/v2.0"));
}
