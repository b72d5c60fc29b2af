use lambda_http::Error;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let deps = shared::Deps::from_env().await?;
    shared::entry::run("deliver", |req| deliver::handle(&deps, req)).await
}
