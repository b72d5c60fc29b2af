//! What the `imgbt` binary shares with the test kit and the benchmarks.
//!
//! - [`dev`]: the dev vault (`imgbt dev seed`): fixed ids, well-known keys, a sample asset.

//! - [`objects`]: the local object server (`imgbt dev objects`), which serves the embedded
//!   default's large objects outside the functions, as R2 serves them.

pub mod dev;
pub mod objects;
