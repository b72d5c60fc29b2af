use lambda_http::Error;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let deps = shared::Deps::from_env_with(shared::deps::no_objects).await?;
    shared::entry::run("delivery_rotate", |req| delivery_rotate::handle(&deps, req)).await
}
