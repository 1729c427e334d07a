//! Seed files: the documented format, read from disk, served as it says.

use super::*;
use gatehouse_emulator::testing::Fetch as _;

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
        .json_body()
        .await;
    assert_eq!(body["displayName"], "Ann Lee");
    assert!(
        emulator.demo_app().is_none(),
        "a seed replaces the Contoso demo"
    );

    assert!(Seed::from_json("{\"directories\": 3}").is_err());
}
