use lambda_http::{Error, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let deps = shared::Deps::from_env_with(shared::deps::no_objects).await?;
    lambda_http::run(service_fn(|req| receive::handle(&deps, req))).await
}
