//! The command line of the `seawall` binary, without running a gateway: `--version`,
//! `--help` of every subcommand, `check` on good and bad files, `config schema`, and the
//! documented exit codes (0 ok, 2 usage, 3 invalid config), also when the reader of the
//! output has gone away (`| head`).

mod support;

use support::{TempDir, run_to_exit, workspace_root};

#[test]
fn version_flag_prints_the_crate_version() {
    let (code, out, _) = run_to_exit(&["--version"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        out.trim(),
        format!("seawall {}", env!("CARGO_PKG_VERSION")),
        "stdout: {out}"
    );
}

#[test]
fn help_of_every_subcommand_exits_zero_and_names_its_options() {
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--help"],
            &["run", "check", "config", "sim", "Exit codes"],
        ),
        (
            &["run", "--help"],
            &[
                "--config",
                "--listen",
                "--admin",
                "--sim-listen",
                "--no-watch",
                "--log-format",
                "SIGHUP",
                "SIGTERM",
            ],
        ),
        (&["check", "--help"], &["FILES"]),
        (&["config", "--help"], &["schema"]),
        (&["config", "schema", "--help"], &["JSON Schema"]),
        (&["sim", "--help"], &["--listen"]),
    ];
    for (args, needles) in cases {
        let (code, out, err) = run_to_exit(args);
        assert_eq!(code, Some(0), "seawall {args:?}: stderr {err}");
        for needle in *needles {
            assert!(
                out.contains(needle),
                "seawall {args:?} does not mention {needle}:\n{out}"
            );
        }
    }
}

#[test]
fn check_accepts_every_shipped_example_and_the_default_config() {
    let root = workspace_root();
    let mut files: Vec<_> = std::fs::read_dir(root.join("examples"))
        .expect("examples/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no examples/*.yaml found");
    files.push(root.join("crates/seawall-config/default.yaml"));
    for file in &files {
        let path = file.to_str().expect("utf-8 path");
        let (code, out, err) = run_to_exit(&["check", path]);
        assert_eq!(code, Some(0), "check {path}: stdout {out} stderr {err}");
        assert!(out.contains(path) && out.contains("ok"), "stdout: {out}");
    }
}

const BAD: &str = "\
listeners:
  - name: public
    listen: 127.0.0.1:8080
    idle_timout: 30s
    routes:
      - upstream: nope
        timeout: 30
upstreams:
  - name: app
    endpoints: [127.0.0.1:3000]
";

#[test]
fn check_reports_every_problem_with_file_line_key_and_hint_and_exits_3() {
    let dir = TempDir::new();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, BAD).expect("write");
    let path = file.to_str().expect("utf-8 path");
    let (code, _, err) = run_to_exit(&["check", path]);
    assert_eq!(code, Some(3), "stderr: {err}");

    // The unknown key, on line 4, with its path and a did-you-mean.
    assert!(err.contains(&format!("{path}:4:")), "stderr: {err}");
    assert!(err.contains("listeners[0].idle_timout"), "stderr: {err}");
    assert!(err.contains("idle_timeout"), "no suggestion: {err}");
    // The unknown upstream, on line 6, listing the defined ones.
    assert!(err.contains(&format!("{path}:6:")), "stderr: {err}");
    assert!(
        err.contains("listeners[0].routes[0].upstream"),
        "stderr: {err}"
    );
    assert!(
        err.contains("nope") && err.contains("`app`"),
        "stderr: {err}"
    );
    // The bare-number duration, on line 7, with a hint to add a unit.
    assert!(err.contains(&format!("{path}:7:")), "stderr: {err}");
    assert!(
        err.contains("listeners[0].routes[0].timeout"),
        "stderr: {err}"
    );
    assert!(err.contains("\"30s\""), "no unit hint: {err}");

    assert_eq!(
        err.matches("hint:").count(),
        3,
        "one hint per problem: {err}"
    );
    assert!(err.contains("3 problems"), "no summary: {err}");
}

#[test]
fn check_of_several_files_fails_when_one_is_bad_and_still_reports_the_good_one() {
    let dir = TempDir::new();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, BAD).expect("write");
    let good = workspace_root().join("examples/minimal.yaml");
    let (code, out, err) = run_to_exit(&[
        "check",
        good.to_str().expect("utf-8"),
        bad.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, Some(3), "stderr: {err}");
    assert!(out.contains("minimal.yaml: ok"), "stdout: {out}");
    assert!(err.contains("bad.yaml"), "stderr: {err}");
}

#[test]
fn check_of_a_redis_limit_depends_on_the_builds_redis_feature() {
    // The shipped example with one limit moved to Redis: valid with the (default) `redis`
    // feature; without it, refused before a deploy with the fix spelled out.
    let example = workspace_root().join("examples/api-gateway.yaml");
    let text = std::fs::read_to_string(&example).expect("read example");
    let local = r#"rate: "6000/min" }"#;
    assert!(text.contains(local), "the example changed: adapt this test");
    let text = text.replacen(
        local,
        "rate: \"6000/min\", store: redis }\n              redis: { url: \"redis://127.0.0.1:6379\" }",
        1,
    );
    let dir = TempDir::new();
    let file = dir.path().join("redis.yaml");
    std::fs::write(&file, text).expect("write");
    let (code, out, err) = run_to_exit(&["check", file.to_str().expect("utf-8")]);
    if cfg!(feature = "redis") {
        assert_eq!(code, Some(0), "stdout {out} stderr {err}");
    } else {
        assert_eq!(code, Some(3), "stdout {out} stderr {err}");
        assert!(
            err.contains(
                "rate_limit.limits[1].store: this build has no Redis support; rebuild with --features redis"
            ),
            "stderr: {err}"
        );
    }
}

#[test]
fn check_warns_about_a_redis_timeout_that_can_stall_the_route_and_still_exits_0() {
    let text = "\
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes:
      - name: api
        upstream: app
        timeout: 2s
        middleware:
          - rate_limit:
              redis: {url: \"redis://:TopSecretRedisPw@127.0.0.1:6399\", timeout: 5s}
              limits: [{name: k, key: [client_ip], rate: \"100/s\", store: redis}]
upstreams:
  - name: app
    endpoints: [127.0.0.1:3000]
";
    let dir = TempDir::new();
    let file = dir.path().join("stall.yaml");
    std::fs::write(&file, text).expect("write");
    let path = file.to_str().expect("utf-8");
    let (code, out, err) = run_to_exit(&["check", path]);
    if !cfg!(feature = "redis") {
        return;
    }
    assert_eq!(code, Some(0), "stdout {out} stderr {err}");
    assert!(out.contains("stall.yaml: ok (1 warning)"), "stdout: {out}");
    assert!(
        err.starts_with(
            "warning: redis timeout 5s is not shorter than the timeout 2s of route `api`"
        ),
        "stderr: {err}"
    );
    assert!(err.contains(&format!("{path}:10:")), "stderr: {err}");
    assert!(err.contains("layer_stalled"), "stderr: {err}");
    // The code frame quotes the URL's line, without its password.
    assert!(err.contains("redis://:***@127.0.0.1:6399"), "stderr: {err}");
    assert!(!err.contains("TopSecretRedisPw"), "stderr: {err}");
}

#[test]
fn check_on_a_missing_file_exits_3_and_names_the_file() {
    let dir = TempDir::new();
    let file = dir.path().join("does-not-exist.yaml");
    let path = file.to_str().expect("utf-8 path");
    let (code, _, err) = run_to_exit(&["check", path]);
    assert_eq!(code, Some(3), "stderr: {err}");
    assert!(err.contains(path), "stderr does not name the file: {err}");
    assert!(err.to_lowercase().contains("no such file"), "stderr: {err}");
}

#[test]
fn config_schema_prints_a_json_schema_of_the_config_file() {
    let (code, out, err) = run_to_exit(&["config", "schema"]);
    assert_eq!(code, Some(0), "stderr: {err}");
    let schema: serde_json::Value = serde_json::from_str(&out).expect("schema is valid JSON");
    assert!(
        schema["$schema"]
            .as_str()
            .is_some_and(|s| s.contains("json-schema.org")),
        "no $schema: {out}"
    );
    let props = &schema["properties"];
    for key in ["listeners", "upstreams", "admin", "shutdown"] {
        assert!(props.get(key).is_some(), "schema lacks `{key}`");
    }
    assert!(
        schema["required"]
            .as_array()
            .is_some_and(|r| r.iter().any(|k| k == "listeners")),
        "`listeners` is not required"
    );
}

#[test]
fn unknown_subcommands_and_missing_arguments_exit_2() {
    let (code, _, err) = run_to_exit(&["frobnicate"]);
    assert_eq!(code, Some(2), "stderr: {err}");
    assert!(err.contains("frobnicate"), "stderr: {err}");

    let (code, _, err) = run_to_exit(&["check"]);
    assert_eq!(code, Some(2), "check without files: {err}");

    let (code, _, err) = run_to_exit(&["run", "--listen", "not-an-address"]);
    assert_eq!(code, Some(2), "bad --listen: {err}");
}

#[test]
fn run_with_an_invalid_config_file_exits_3_with_diagnostics() {
    let dir = TempDir::new();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, BAD).expect("write");
    let path = file.to_str().expect("utf-8 path");
    let (code, _, err) = run_to_exit(&["run", "--config", path]);
    assert_eq!(code, Some(3), "stderr: {err}");
    assert!(err.contains(&format!("{path}:4:")), "stderr: {err}");
}

#[test]
fn run_reads_the_config_path_from_seawall_config_when_no_flag_is_given() {
    let dir = TempDir::new();
    let file = dir.path().join("from-env.yaml");
    std::fs::write(&file, BAD).expect("write");
    let path = file.to_str().expect("utf-8 path");
    let (code, _, err) = support::run_to_exit_with_env(&["run"], &[("SEAWALL_CONFIG", path)]);
    assert_eq!(code, Some(3), "stderr: {err}");
    assert!(err.contains(&format!("{path}:4:")), "stderr: {err}");
}

/// Runs `seawall ARGS` with stdout and stderr into a pipe whose reader has already exited
/// (like `| head` that has read enough); returns the shell's report of the exit code.
fn with_closed_reader(args: &str) -> String {
    let script = format!("{{ sleep 0.3; \"$0\" {args}; echo \"rc=$?\" > \"$1\"; }} 2>&1 | true");
    let dir = TempDir::new();
    let report = dir.path().join("rc");
    let status = std::process::Command::new("sh")
        .args(["-c", &script, support::BIN, report.to_str().expect("utf-8")])
        .env_remove("SEAWALL_CONFIG")
        .status()
        .expect("run sh");
    assert!(status.success());
    std::fs::read_to_string(&report).expect("rc report")
}

#[test]
fn output_into_a_closed_pipe_does_not_panic_and_keeps_the_exit_code() {
    assert_eq!(
        with_closed_reader("config schema").trim(),
        "rc=0",
        "config schema"
    );
    let good = workspace_root().join("examples/minimal.yaml");
    let good = good.to_str().expect("utf-8");
    assert_eq!(
        with_closed_reader(&format!("check {good}")).trim(),
        "rc=0",
        "check good"
    );

    let dir = TempDir::new();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, BAD).expect("write");
    let bad = bad.to_str().expect("utf-8");
    assert_eq!(
        with_closed_reader(&format!("check {bad}")).trim(),
        "rc=3",
        "check bad"
    );
}

#[test]
fn sim_on_a_port_in_use_exits_1_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let (code, _, err) = run_to_exit(&["sim", "--listen", &addr]);
    assert_eq!(code, Some(1), "stderr: {err}");
    assert!(
        err.contains(&addr) && err.contains("in use"),
        "stderr: {err}"
    );
}
