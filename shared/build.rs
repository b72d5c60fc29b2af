//! Compiles `functions.toml`, the registry of functions at the workspace root, into
//! `$OUT_DIR/functions.rs`, which `shared::functions` includes. A faulty registry stops the build
//! with the registry's own words for what is wrong.

#[path = "build/registry.rs"]
mod registry;

use std::path::Path;

fn main() {
    // Read at run time, not baked in with env!: a build script's binary can be shared by two
    // checkouts of the workspace that share a target directory, and each must read its own registry.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let source = Path::new(&manifest_dir).join("../functions.toml");
    println!("cargo::rerun-if-changed={}", source.display());
    println!("cargo::rerun-if-changed=build/registry.rs");
    let text =
        std::fs::read_to_string(&source).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
    let entries = registry::parse(&text)
        .unwrap_or_else(|faults| panic!("functions.toml is refused:\n{faults}"));
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("functions.rs");
    std::fs::write(&out, registry::render(&entries))
        .unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}
