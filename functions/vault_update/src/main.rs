use lambda_http::Error;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let deps = shared::Deps::from_env_with(shared::deps::no_objects).await?;
    shared::entry::run("vault_update", |req| vault_update::handle(&deps, req)).await
}
