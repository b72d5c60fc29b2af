use lambda_http::{Error, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let deps = shared::Deps::from_env().await?;
    lambda_http::run(service_fn(|req| uploads::handle(&deps, req))).await
}
