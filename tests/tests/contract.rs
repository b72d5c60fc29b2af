//! docs/API.md, rule by rule, on every backend. Each test calls the handlers as the Lambda runtime
//! would (a `lambda_http::Request` with API Gateway's path parameters), over a fresh store, and its
//! name says the rule it proves. The rules live in `contract/rules.rs`, included unchanged once per
//! backend: the embedded default; D1 over REST plus R2 over S3 against the test servers; and D1
//! over REST against the D1 gateway Worker on workerd's own D1 engine (`wrangler dev --local`),
//! with R2 over S3 against the S3 test server (its npm packages are installed on first use).

mod embedded {
    async fn app() -> imgbt_tests::TestApp {
        imgbt_tests::TestApp::on(imgbt_tests::Backend::Embedded).await
    }

    include!("contract/rules.rs");
    include!("contract/transforms.rs");
}

mod cloudflare {
    async fn app() -> imgbt_tests::TestApp {
        imgbt_tests::TestApp::on(imgbt_tests::Backend::Cloudflare).await
    }

    include!("contract/rules.rs");
    include!("contract/transforms.rs");
}

mod gateway {
    async fn app() -> imgbt_tests::TestApp {
        imgbt_tests::TestApp::on(imgbt_tests::Backend::Gateway).await
    }

    include!("contract/rules.rs");
    include!("contract/transforms.rs");
}
