use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let deps = shared::Deps::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        gc::handle(&deps, event)
    }))
    .await
}
