//! Fails when include/hashmap_shared.h differs from what cbindgen generates from
//! src/lib.rs plus the prototypes of the entry points generated from the engine's
//! operation list (which cbindgen cannot see: it does not expand macros). Run with
//! HM_BLESS=1 to rewrite the header.

use std::path::Path;

#[test]
fn header_is_fresh() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen failed");
    let mut out = Vec::new();
    bindings.write(&mut out);
    // The generated prototypes go inside the extern "C" block, before its end.
    let end = "#ifdef __cplusplus\n}  // extern \"C\"";
    let text = String::from_utf8(out).expect("cbindgen writes UTF-8");
    let at = text.rfind(end).expect("the header ends its extern \"C\" block");
    let generated = format!("{}{}{}", &text[..at], hashmap_shared_ffi::KEYED_PROTOTYPES, &text[at..]).into_bytes();
    let path = dir.join("include/hashmap_shared.h");
    let committed = std::fs::read(&path).unwrap_or_default();
    if generated != committed {
        if std::env::var_os("HM_BLESS").is_some() {
            std::fs::write(&path, &generated).expect("write header");
            return;
        }
        panic!(
            "include/hashmap_shared.h is stale: regenerate it with \
             HM_BLESS=1 cargo test -p hashmap-shared-ffi --release --test header_fresh"
        );
    }
}

/// The committed header compiles as C (and C++ when a compiler is around) with all
/// warnings as errors.
#[test]
fn header_compiles() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = std::env::temp_dir().join(format!("hm-header-{}.c", std::process::id()));
    std::fs::write(&src, "#include \"hashmap_shared.h\"\nint main(void) { return hm_last_error() == 0; }\n").unwrap();
    for (cc, std) in [("cc", "-std=c99"), ("c++", "-std=c++11")] {
        let Ok(out) = std::process::Command::new(cc)
            .args([std, "-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only", "-x"])
            .arg(if cc == "cc" { "c" } else { "c++" })
            .arg("-I")
            .arg(dir.join("include"))
            .arg(&src)
            .output()
        else {
            continue; // no such compiler here
        };
        assert!(out.status.success(), "{cc}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let _ = std::fs::remove_file(&src);
}
