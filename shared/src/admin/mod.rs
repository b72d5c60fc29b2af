//! What the `imgbt` CLI does to a store, kept in this library so that the test kit sets up and
//! checks stores through exactly the same code. No request handler uses it; the scheduled `gc`
//! function (functions/gc) runs [`gc`] as the CLI does.
//!
//! - [`vaults`]: vaults and their keys.
//! - [`gc`]: the sweep of expired uploads, pending deletions, objects nothing names and old rows
//!   of completed uploads.
//! - [`fsck`]: records and objects, compared.
//!
//! The dev vault's seeding is not here: it is no part of the product, and lives with the CLI's
//! `imgbt dev seed` (`imgbt_cli::dev`).

pub mod fsck;
pub mod gc;
pub mod vaults;

pub use fsck::{FsckError, FsckReport, MissingObject, SizeMismatch, fsck};
pub use gc::{GcCounts, GcError, GcFailure, GcReport, gc};
pub use vaults::{
    KeyInfo, NewKey, NewVault, VaultInfo, create_key, create_vault, list_keys, list_vaults,
    revoke_key,
};
