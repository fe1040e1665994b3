//! The README's curl tour works as written: every command between `<!-- tour:start -->` and
//! `<!-- tour:end -->` in the workspace README, run with curl against `seawall run` on the
//! embedded default config, gives the status and `seawall-error` reason of the
//! `# expect: <status> [<reason>]` line that follows it.
//!
//! Until README.md exists, the tour below (the one the README is to carry) is run instead,
//! so the behaviour is checked either way; once README.md exists it must contain the tour.

mod support;

use std::process::Command;

use support::{Launch, Process, workspace_root};

/// The tour the README is written against; used while README.md does not exist.
const FALLBACK_TOUR: &str = "\
curl -i localhost:8080/delay/100ms
# expect: 200
curl -i localhost:8080/status/503
# expect: 503
curl -i -H 'seawall-timeout-ms: 300' localhost:8080/delay/2s
# expect: 504 deadline_exceeded
curl -i localhost:8080/delay/6s
# expect: 504 response_header_timeout
curl -i localhost:8080/reset
# expect: 502 upstream_reset
curl -i localhost:8080/close
# expect: 502 upstream_reset
";

#[derive(Debug, Clone)]
struct Step {
    command: String,
    status: u16,
    reason: Option<String>,
}

/// Parses `curl ...` lines, each followed by `# expect: <status> [<reason>]`.
fn parse_tour(block: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut pending: Option<String> = None;
    for line in block.lines().map(str::trim) {
        let line = line.strip_prefix("$ ").unwrap_or(line);
        if line.starts_with("curl ") {
            assert!(
                pending.is_none(),
                "tour: {pending:?} has no `# expect:` line"
            );
            pending = Some(line.to_owned());
        } else if let Some(expect) = line.strip_prefix("# expect:") {
            let command = pending
                .take()
                .unwrap_or_else(|| panic!("tour: `{line}` follows no curl command"));
            let mut words = expect.split_whitespace();
            let status = words
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("tour: no status in `{line}`"));
            let reason = words.next().map(str::to_owned);
            steps.push(Step {
                command,
                status,
                reason,
            });
        }
    }
    assert!(
        pending.is_none(),
        "tour: {pending:?} has no `# expect:` line"
    );
    steps
}

/// The tour block: from README.md when it exists, else the fallback.
fn tour() -> (String, Vec<Step>) {
    let readme = workspace_root().join("README.md");
    let Ok(text) = std::fs::read_to_string(&readme) else {
        println!("README.md does not exist yet; running the fallback tour");
        return ("fallback tour".to_owned(), parse_tour(FALLBACK_TOUR));
    };
    let start = text
        .find("<!-- tour:start -->")
        .expect("README.md has no `<!-- tour:start -->` marker");
    let end = text[start..]
        .find("<!-- tour:end -->")
        .map(|e| start + e)
        .expect("README.md has no `<!-- tour:end -->` marker after tour:start");
    let steps = parse_tour(&text[start..end]);
    assert!(
        !steps.is_empty(),
        "the README tour block has no curl commands"
    );
    (readme.display().to_string(), steps)
}

/// Points the README's default addresses at this test's ports and makes curl quiet and
/// bounded.
fn localise(command: &str, gw: &Process) -> String {
    let p = gw.ports;
    let mut c = command.to_owned();
    for (port, to) in [(8080, p.listen), (9901, p.admin), (8081, p.sim)] {
        for host in ["localhost", "127.0.0.1"] {
            c = c.replace(&format!("{host}:{port}"), &to.to_string());
        }
    }
    let rest = c.strip_prefix("curl ").expect("starts with curl");
    format!("curl -sS -i --max-time 20 {rest}")
}

/// Status and `seawall-error` header of curl's `-i` output.
fn parse_response(out: &str) -> (Option<u16>, Option<String>) {
    let status = out
        .lines()
        .find(|l| l.starts_with("HTTP/"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok());
    let reason = out.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("seawall-error")
            .then(|| value.trim().to_owned())
    });
    (status, reason)
}

#[test]
fn the_readme_curl_tour_gives_the_documented_statuses_and_reasons() {
    let (source, steps) = tour();
    let gw = Launch::default_config().start();
    // Independent requests: run them side by side (one waits out a 5s timeout).
    let runs: Vec<_> = steps
        .iter()
        .map(|step| {
            let cmd = localise(&step.command, &gw);
            let handle = std::thread::spawn({
                let cmd = cmd.clone();
                move || {
                    Command::new("sh")
                        .args(["-c", &cmd])
                        .output()
                        .expect("run curl")
                }
            });
            (step, cmd, handle)
        })
        .collect();
    for (step, cmd, handle) in runs {
        let out = handle.join().expect("curl thread");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{source}: `{}` ({cmd}) failed: {}",
            step.command,
            String::from_utf8_lossy(&out.stderr)
        );
        let (status, reason) = parse_response(&stdout);
        assert_eq!(
            status,
            Some(step.status),
            "{source}: `{}` answered:\n{stdout}",
            step.command
        );
        assert_eq!(
            reason, step.reason,
            "{source}: `{}` has the wrong seawall-error:\n{stdout}",
            step.command
        );
    }
}

#[test]
fn the_tour_parser_pairs_each_command_with_its_expectation() {
    let steps = parse_tour(FALLBACK_TOUR);
    assert_eq!(steps.len(), 6);
    assert_eq!(steps[2].status, 504);
    assert_eq!(steps[2].reason.as_deref(), Some("deadline_exceeded"));
    assert!(steps[2].command.contains("'seawall-timeout-ms: 300'"));
    assert_eq!(steps[0].reason, None);
    let (status, reason) =
        parse_response("HTTP/1.1 502 Bad Gateway\r\nSeawall-Error: upstream_reset\r\n\r\nbody");
    assert_eq!(
        (status, reason.as_deref()),
        (Some(502), Some("upstream_reset"))
    );
}
