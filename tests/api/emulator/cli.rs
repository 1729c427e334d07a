//! `gatehouse emulator` as an operator runs it, and seed files.

use super::*;
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

#[tokio::test]
async fn a_seed_file_brings_its_directories_apps_and_consents() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seed.json");
    std::fs::write(
        &path,
        r#"{
          "directories": [{
            "tenantId": "0d3e4f5a-1b2c-4d5e-8f90-a1b2c3d4e5f6",
            "displayName": "Fabrikam",
            "domains": [{"name": "fabrikam.com", "isDefault": true}],
            "users": [{"userPrincipalName": "ann@fabrikam.com", "displayName": "Ann Lee", "mail": "ann@fabrikam.com"}],
            "consents": [{"clientId": "5a6b7c8d-1111-4222-8333-944455556666"}]
          }],
          "apps": [{"clientId": "5a6b7c8d-1111-4222-8333-944455556666", "secret": "s3cret",
                    "redirectUris": ["http://localhost:3000/cb"]}]
        }"#,
    )
    .unwrap();
    let seed = Seed::from_file(&path).expect("the documented format parses");
    let emulator = Emulator::new(seed).unwrap();
    let addr = emulator
        .spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let res = http
        .post(format!("http://{addr}/fabrikam.com/oauth2/v2.0/token"))
        .form(&[
            ("client_id", "5a6b7c8d-1111-4222-8333-944455556666"),
            ("client_secret", "s3cret"),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        200,
        "the seeded consent allows client credentials"
    );
    let token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let body: Value = http
        .get(format!("http://{addr}/v1.0/users/ann@fabrikam.com"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["displayName"], "Ann Lee");
    assert!(
        emulator.demo_app().is_none(),
        "a seed replaces the Contoso demo"
    );

    assert!(Seed::from_json("{\"directories\": 3}").is_err());
}
