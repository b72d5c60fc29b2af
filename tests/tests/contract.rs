//! API.md, rule by rule, on every backend. Each test calls the five handlers as the Lambda runtime
//! would (a `lambda_http::Request` with API Gateway's path parameters), over a fresh store, and its
//! name says the rule it proves. The rules live in `contract/rules.rs`, included unchanged once per
//! backend: the embedded default, and D1 over REST plus R2 over S3 against the test servers.

mod embedded {
    async fn app() -> imgbt_tests::TestApp {
        imgbt_tests::TestApp::on(imgbt_tests::Backend::Embedded).await
    }

    include!("contract/rules.rs");
}

mod cloudflare {
    async fn app() -> imgbt_tests::TestApp {
        imgbt_tests::TestApp::on(imgbt_tests::Backend::Cloudflare).await
    }

    include!("contract/rules.rs");
}
