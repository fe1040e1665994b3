//! `seawall_config::parse` on arbitrary UTF-8: it must never panic, whatever the YAML,
//! and neither must rendering its diagnostics (code frames slice the source text by
//! line and column, which is where a bad position would show).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match seawall_config::parse_with_warnings("fuzz.yaml", text) {
        Ok((config, warnings)) => {
            // A config that parsed is valid: validating it again finds nothing.
            assert!(
                seawall_config::validate(&config).is_empty(),
                "parse accepted a config that validate rejects"
            );
            for w in &warnings {
                let _ = w.to_string();
            }
        }
        Err(diagnostics) => {
            let rendered = diagnostics.to_string();
            assert!(!rendered.is_empty(), "a rejected config must say why");
        }
    }
});
