//! The five functions over real HTTP, the way a client (or curl) meets them: a hyper server on
//! `127.0.0.1:0` plays API Gateway ([`imgbt_tests::gateway`]), and reqwest is the client.

use imgbt_tests::{TestApp, fixture};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::rc::Rc;

/// Serves `app` on a free local port until the test ends.
async fn start(app: Rc<TestApp>) -> SocketAddr {
    imgbt_tests::gateway::start(app).await
}

fn assert_json(response: &reqwest::Response) {
    let ct = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok());
    assert_eq!(ct, Some("application/json"));
}

async fn error_code(response: reqwest::Response) -> (u16, Value) {
    assert_json(&response);
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("JSON error body");
    assert_eq!(body["error"]["status"], status);
    (status, body["error"]["code"].clone())
}

#[tokio::test]
async fn a_client_uploads_lists_gets_patches_and_deletes_over_http() {
    let local = tokio::task::LocalSet::new();
    local.run_until(walkthrough()).await;
}

async fn walkthrough() {
    let app = Rc::new(TestApp::new().await);
    let addr = start(app.clone()).await;
    let base = format!("http://{addr}/api/v1/vaults/{}/assets", app.vault.vault_id);
    let (sk, pk) = (app.sk().to_owned(), app.pk().to_owned());
    let client = reqwest::Client::new();

    // curl -F partition=marketing -F file=@photo.png …
    let png = fixture("tiny.png");
    let form = reqwest::multipart::Form::new()
        .text("partition", "marketing")
        .text("collection", "blog")
        .text("channel", "hero-images")
        .text("metadata", r#"{"alt":"Hero"}"#)
        .text("tags", r#"["hero","blog"]"#)
        .part(
            "file",
            reqwest::multipart::Part::bytes(png.clone())
                .file_name("photo.png")
                .mime_str("image/png")
                .unwrap(),
        );
    let response = client
        .post(&base)
        .bearer_auth(&sk)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    assert_json(&response);
    let record: Value = response.json().await.unwrap();
    let asset = record["id"].as_str().unwrap().to_owned();
    assert_eq!(record["filename"], "photo.png");
    assert_eq!(record["size"], png.len());
    assert_eq!(
        (record["width"].clone(), record["height"].clone()),
        (json!(3), json!(2))
    );
    assert_eq!(record["metadata"], r#"{"alt":"Hero"}"#);
    assert_eq!(record["tags"], r#"["hero","blog"]"#);
    assert_eq!(
        app.read_object(record["r2_key"].as_str().unwrap()),
        Some(png)
    );

    let response = client
        .get(&base)
        .query(&[("limit", "7"), ("channel", "hero-images")])
        .bearer_auth(&pk)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_json(&response);
    let page: Value = response.json().await.unwrap();
    assert_eq!(
        page,
        json!({ "data": [record.clone()], "cursor": null, "has_more": false })
    );

    let url = format!("{base}/{asset}");
    let response = client.get(&url).bearer_auth(&pk).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), record);

    let patch = json!({ "metadata": { "alt": null, "credit": "me" }, "tags": ["final"] });
    let response = client
        .patch(&url)
        .bearer_auth(&sk)
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_json(&response);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["metadata"], r#"{"credit":"me"}"#);
    assert_eq!(updated["tags"], r#"["final"]"#);
    assert!(updated["updated_at"].as_str() > record["updated_at"].as_str());

    // Refusals travel over the wire as the envelope, with their headers.
    let response = client.delete(&url).send().await.unwrap();
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .map(|v| v.as_bytes()),
        Some(&b"Bearer"[..])
    );
    assert_eq!(error_code(response).await, (401, json!("UNAUTHORIZED")));
    let response = client.delete(&url).bearer_auth(&pk).send().await.unwrap();
    assert_eq!(error_code(response).await, (403, json!("FORBIDDEN")));
    let response = client.put(&url).bearer_auth(&sk).send().await.unwrap();
    assert_eq!(error_code(response).await, (404, json!("NOT_FOUND")));

    let response = client.delete(&url).bearer_auth(&sk).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 204);
    assert!(response.bytes().await.unwrap().is_empty());
    assert!(
        app.object_files().is_empty(),
        "the object is gone from the directory"
    );

    let response = client.get(&url).bearer_auth(&sk).send().await.unwrap();
    assert_eq!(error_code(response).await, (404, json!("ASSET_NOT_FOUND")));
    let response = client.delete(&url).bearer_auth(&sk).send().await.unwrap();
    assert_eq!(error_code(response).await, (404, json!("ASSET_NOT_FOUND")));
}
