//! The floor: the smallest `lambda_http` function, set up as the imgbt functions are (the same
//! tracing subscriber, the same runtime flavour), answering 200 "hello".

use lambda_http::{Body, Error, Request, Response, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    lambda_http::run(service_fn(|_req: Request| async {
        Ok::<_, Error>(Response::builder().status(200).body(Body::from("hello"))?)
    }))
    .await
}
