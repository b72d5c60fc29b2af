//! What the `imgbt` binary shares with the test kit and the benchmarks.
//!
//! - [`dev`]: the dev vault (`imgbt dev seed`): fixed ids, well-known keys, a sample asset.

pub mod dev;
