//! docs/errors.md must list every error kind with the status, gRPC status and reason the
//! code uses.

use seawall_core::ErrorKind;

#[test]
fn errors_doc_table_matches_the_code() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/errors.md"))
        .expect("docs/errors.md exists");
    for kind in ErrorKind::ALL {
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", kind.reason())))
            .unwrap_or_else(|| panic!("docs/errors.md has no row for `{}`", kind.reason()));
        let status = row.split('|').nth(2).map(str::trim).unwrap_or_default();
        assert!(
            status.starts_with(&kind.status().as_u16().to_string()),
            "docs/errors.md says {status} for `{}`, the code says {}",
            kind.reason(),
            kind.status().as_u16()
        );
        let grpc = row.split('|').nth(3).map(str::trim).unwrap_or_default();
        assert!(
            grpc.starts_with(&format!("{} ", kind.grpc_status())),
            "docs/errors.md says gRPC {grpc} for `{}`, the code says {}",
            kind.reason(),
            kind.grpc_status()
        );
        assert_eq!(ErrorKind::from_reason(kind.reason()), Some(kind));
    }
    let rows = doc.lines().filter(|l| l.starts_with("| `")).count();
    assert_eq!(
        rows,
        ErrorKind::ALL.len(),
        "docs/errors.md lists kinds the code does not have"
    );
}
