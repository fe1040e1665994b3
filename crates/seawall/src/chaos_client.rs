//! `seawall chaos list | inspect | create | toggle | delete | toxic ...`: a command-line
//! client of the chaos API, in the spirit of `toxiproxy-cli`, for `seawall chaos` or a
//! real Toxiproxy alike (it only speaks Toxiproxy's HTTP API).
//!
//! Output is written for a person (aligned columns, one sentence per change); `--json`
//! prints the server's own JSON instead, for scripts. Errors say what failed and what to do:
//! the server's message and status, or, when nothing answers, which URL was tried and how to
//! point the client elsewhere (`--url` or `TOXIPROXY_URL`, as `toxiproxy-cli` reads it).

use std::{fmt::Write as _, process::ExitCode, time::Duration};

use bytes::Bytes;
use clap::{Args, Subcommand};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};

/// How long one API call may take, connect included: the API answers at once, so a
/// longer wait means a wrong address or a stuck server, which is better said than waited on.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the client finds the API, and how it prints.
#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// The chaos API (`seawall chaos` or Toxiproxy).
    #[arg(
        long,
        env = "TOXIPROXY_URL",
        default_value = "http://127.0.0.1:8474",
        global = true
    )]
    pub url: String,
    /// Print the server's JSON instead of the readable summary.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The client verbs.
#[derive(Subcommand, Debug, Clone)]
pub enum Verb {
    /// List every proxy with its addresses, state and number of toxics.
    #[command(visible_aliases = ["ls", "l"])]
    List,
    /// Show one proxy and its toxics, upstream and downstream.
    #[command(visible_alias = "i")]
    Inspect {
        /// The proxy's name.
        proxy: String,
    },
    /// Create a proxy: listen on one address, forward to another.
    #[command(
        visible_alias = "c",
        after_help = "Example: seawall chaos create redis --listen 127.0.0.1:26379 --upstream 127.0.0.1:6379"
    )]
    Create {
        /// The proxy's name (unique).
        proxy: String,
        /// Address the proxy listens on (`host:port`; port 0 picks a free one).
        #[arg(short, long)]
        listen: String,
        /// Address the proxy forwards to.
        #[arg(short, long)]
        upstream: String,
        /// Carry HTTP/1.1 (`protocol: http`, an extension): the proxy takes the
        /// per-request toxics http_status, http_delay and http_reset instead of the TCP
        /// ones.
        #[arg(long)]
        http: bool,
    },
    /// Enable a disabled proxy, or disable an enabled one (which closes its listener and
    /// every live connection).
    #[command(visible_alias = "tog")]
    Toggle {
        /// The proxy's name.
        proxy: String,
    },
    /// Delete a proxy, its listener and its connections.
    #[command(visible_alias = "d")]
    Delete {
        /// The proxy's name.
        proxy: String,
    },
    /// Add, update or remove a toxic.
    #[command(subcommand, visible_alias = "t")]
    Toxic(ToxicVerb),
}

/// The toxic verbs.
#[derive(Subcommand, Debug, Clone)]
pub enum ToxicVerb {
    /// Add a toxic to a proxy.
    #[command(
        visible_alias = "a",
        after_help = "Types and attributes:\n  \
            latency     latency=<ms> jitter=<ms>\n  \
            bandwidth   rate=<KB/s>\n  \
            slow_close  delay=<ms>\n  \
            timeout     timeout=<ms> (0: hold the data until the toxic is removed)\n  \
            reset_peer  timeout=<ms>\n  \
            slicer      average_size=<bytes> size_variation=<bytes> delay=<µs>\n  \
            limit_data  bytes=<bytes>\n  \
            limit_time  time=<ms>\n  \
            drop_data   percent=<0-100>\n  \
            noop\n\n\
            On a proxy created with --http (per request, toxicity drawn per request):\n  \
            http_status status=<code> body=<text>\n  \
            http_delay  delay=<ms> jitter=<ms>\n  \
            http_reset  after_bytes=<bytes>\n\n\
            Example: seawall chaos toxic add redis -t latency -a latency=100 -a jitter=20 --upstream"
    )]
    Add {
        /// The proxy's name.
        proxy: String,
        /// The toxic's type (see below).
        #[arg(short = 't', long = "type")]
        kind: String,
        /// The toxic's name; default `<type>_<stream>`.
        #[arg(short, long)]
        name: Option<String>,
        /// Share of connections affected, 0 to 1; default 1.
        #[arg(long)]
        toxicity: Option<f64>,
        /// An attribute, `key=value`; repeat for more.
        #[arg(short, long = "attribute", value_name = "KEY=VALUE")]
        attributes: Vec<String>,
        /// Apply to data from the client to the upstream.
        #[arg(short, long, conflicts_with = "downstream")]
        upstream: bool,
        /// Apply to data from the upstream to the client (the default).
        #[arg(short, long)]
        downstream: bool,
    },
    /// Change a toxic's toxicity or attributes (attributes not given keep their values).
    #[command(visible_alias = "u")]
    Update {
        /// The proxy's name.
        proxy: String,
        /// The toxic's name.
        #[arg(short, long)]
        name: String,
        /// New share of connections affected, 0 to 1.
        #[arg(long)]
        toxicity: Option<f64>,
        /// An attribute, `key=value`; repeat for more.
        #[arg(short, long = "attribute", value_name = "KEY=VALUE")]
        attributes: Vec<String>,
    },
    /// Remove a toxic from a proxy.
    #[command(visible_aliases = ["r", "delete"])]
    Remove {
        /// The proxy's name.
        proxy: String,
        /// The toxic's name.
        #[arg(short, long)]
        name: String,
    },
}

/// Runs one verb and prints its result; the exit code is 0 on success, 1 when the server
/// refused or could not be reached, 2 for a bad argument found after parsing.
pub fn run(args: &ClientArgs, verb: Verb) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("cannot start the runtime: {e}"), 1),
    };
    match runtime.block_on(execute(args, verb)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(Failure::Usage(message)) => fail(&message, 2),
        Err(Failure::Api(message)) => fail(&message, 1),
    }
}

fn fail(message: &str, code: u8) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(code)
}

/// Why a verb failed: the user's arguments (exit 2) or the API (exit 1).
#[derive(Debug)]
enum Failure {
    Usage(String),
    Api(String),
}

async fn execute(args: &ClientArgs, verb: Verb) -> Result<String, Failure> {
    let api = Api::new(&args.url)?;
    let (value, summary) = match verb {
        Verb::List => {
            let proxies = api.call(Method::GET, "/proxies", None).await?;
            let text = list_text(&proxies);
            (proxies, text)
        }
        Verb::Inspect { proxy } => {
            let body = api.call(Method::GET, &proxy_path(&proxy), None).await?;
            let text = inspect_text(&body);
            (body, text)
        }
        Verb::Create {
            proxy,
            listen,
            upstream,
            http,
        } => {
            let mut body = json!({"name": proxy, "listen": listen, "upstream": upstream});
            if http {
                body["protocol"] = json!("http");
            }
            let created = api.call(Method::POST, "/proxies", Some(body)).await?;
            let text = format!(
                "Created proxy {}: listening on {}, forwarding to {}.\n",
                str_field(&created, "name"),
                str_field(&created, "listen"),
                str_field(&created, "upstream")
            );
            (created, text)
        }
        Verb::Toggle { proxy } => {
            let path = proxy_path(&proxy);
            let current = api.call(Method::GET, &path, None).await?;
            let enabled = current
                .get("enabled")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let updated = api
                .call(Method::POST, &path, Some(json!({"enabled": !enabled})))
                .await?;
            let now = if !enabled { "enabled" } else { "disabled" };
            (updated, format!("Proxy {proxy} is now {now}.\n"))
        }
        Verb::Delete { proxy } => {
            api.call(Method::DELETE, &proxy_path(&proxy), None).await?;
            (Value::Null, format!("Deleted proxy {proxy}.\n"))
        }
        Verb::Toxic(verb) => toxic(&api, verb).await?,
    };
    if args.json {
        // A deletion has no body; print nothing rather than `null`.
        return Ok(match value {
            Value::Null => String::new(),
            value => format!(
                "{}\n",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            ),
        });
    }
    Ok(summary)
}

async fn toxic(api: &Api, verb: ToxicVerb) -> Result<(Value, String), Failure> {
    match verb {
        ToxicVerb::Add {
            proxy,
            kind,
            name,
            toxicity,
            attributes,
            upstream,
            downstream: _,
        } => {
            let stream = if upstream { "upstream" } else { "downstream" };
            let mut body = Map::new();
            if let Some(name) = name {
                body.insert("name".into(), name.into());
            }
            body.insert("type".into(), kind.into());
            body.insert("stream".into(), stream.into());
            if let Some(toxicity) = toxicity {
                body.insert("toxicity".into(), checked_toxicity(toxicity)?);
            }
            body.insert("attributes".into(), parse_attributes(&attributes)?.into());
            let path = format!("{}/toxics", proxy_path(&proxy));
            let added = api.call(Method::POST, &path, Some(body.into())).await?;
            let text = format!("Added to {proxy}: {}\n", toxic_line(&added));
            Ok((added, text))
        }
        ToxicVerb::Update {
            proxy,
            name,
            toxicity,
            attributes,
        } => {
            // Attributes not given keep their values, and so does the toxicity: the server
            // merges an update into the toxic (as Toxiproxy does).
            let path = toxic_path(&proxy, &name);
            let mut body = Map::new();
            body.insert("attributes".into(), parse_attributes(&attributes)?.into());
            if let Some(t) = toxicity {
                body.insert("toxicity".into(), checked_toxicity(t)?);
            }
            let updated = api.call(Method::POST, &path, Some(body.into())).await?;
            let text = format!("Updated on {proxy}: {}\n", toxic_line(&updated));
            Ok((updated, text))
        }
        ToxicVerb::Remove { proxy, name } => {
            api.call(Method::DELETE, &toxic_path(&proxy, &name), None)
                .await?;
            Ok((Value::Null, format!("Removed toxic {name} from {proxy}.\n")))
        }
    }
}

fn checked_toxicity(toxicity: f64) -> Result<Value, Failure> {
    if (0.0..=1.0).contains(&toxicity) {
        Ok(json!(toxicity))
    } else {
        Err(Failure::Usage(format!(
            "--toxicity {toxicity} is out of range: give a share of connections between 0 and 1 (0.5 = half)"
        )))
    }
}

/// `key=value` pairs as JSON: a value that reads as a number or a boolean is sent as one
/// (the toxics' attributes are numbers), anything else as a string.
fn parse_attributes(pairs: &[String]) -> Result<Map<String, Value>, Failure> {
    let mut out = Map::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(Failure::Usage(format!(
                "attribute `{pair}` has no value: write it as key=value, e.g. -a latency=100"
            )));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(Failure::Usage(format!(
                "attribute `{pair}` has no key: write it as key=value, e.g. -a latency=100"
            )));
        }
        let value = value.trim();
        let parsed = if let Ok(n) = value.parse::<i64>() {
            json!(n)
        } else if let Ok(x) = value.parse::<f64>() {
            json!(x)
        } else if let Ok(b) = value.parse::<bool>() {
            json!(b)
        } else {
            json!(value)
        };
        out.insert(key.to_owned(), parsed);
    }
    Ok(out)
}

fn proxy_path(proxy: &str) -> String {
    format!("/proxies/{}", segment(proxy))
}

fn toxic_path(proxy: &str, toxic: &str) -> String {
    format!("/proxies/{}/toxics/{}", segment(proxy), segment(toxic))
}

/// A name as one path segment: anything outside the unreserved set percent-encoded, so a
/// name with `/` or `?` addresses that proxy and not another resource.
fn segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

fn str_field<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("?")
}

/// The proxies as an aligned table, sorted by name (the API returns an object keyed by
/// name, whose order means nothing).
fn list_text(proxies: &Value) -> String {
    let Some(map) = proxies.as_object().filter(|m| !m.is_empty()) else {
        return "No proxies. Create one with `seawall chaos create NAME --listen ADDR --upstream ADDR`.\n"
            .to_owned();
    };
    let mut rows = vec![[
        "NAME".to_owned(),
        "LISTEN".to_owned(),
        "UPSTREAM".to_owned(),
        "ENABLED".to_owned(),
        "TOXICS".to_owned(),
    ]];
    let mut names: Vec<&String> = map.keys().collect();
    names.sort();
    for name in names {
        let proxy = &map[name];
        let toxics = proxy
            .get("toxics")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        rows.push([
            name.clone(),
            str_field(proxy, "listen").to_owned(),
            str_field(proxy, "upstream").to_owned(),
            yes_no(proxy.get("enabled")).to_owned(),
            toxics.to_string(),
        ]);
    }
    table(&rows)
}

fn yes_no(value: Option<&Value>) -> &'static str {
    match value.and_then(Value::as_bool) {
        Some(true) => "yes",
        Some(false) => "no",
        None => "?",
    }
}

fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn inspect_text(proxy: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Proxy     {}", str_field(proxy, "name"));
    let _ = writeln!(out, "Listen    {}", str_field(proxy, "listen"));
    let _ = writeln!(out, "Upstream  {}", str_field(proxy, "upstream"));
    let _ = writeln!(out, "Enabled   {}", yes_no(proxy.get("enabled")));
    // Only http proxies carry the field (a real Toxiproxy never does).
    if let Some(protocol) = proxy.get("protocol").and_then(Value::as_str) {
        let _ = writeln!(out, "Protocol  {protocol} (toxics act per request)");
    }
    let toxics = proxy
        .get("toxics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for stream in ["upstream", "downstream"] {
        let here: Vec<&Value> = toxics
            .iter()
            .filter(|t| t.get("stream").and_then(Value::as_str) == Some(stream))
            .collect();
        let direction = if stream == "upstream" {
            "client -> upstream"
        } else {
            "upstream -> client"
        };
        let _ = writeln!(out, "\n{stream} toxics ({direction}):");
        if here.is_empty() {
            out.push_str("  none\n");
        }
        for toxic in here {
            let _ = writeln!(out, "  {}", toxic_line(toxic));
        }
    }
    out
}

/// One toxic in a line: `name (type, stream, toxicity T): key=value ...`.
fn toxic_line(toxic: &Value) -> String {
    let toxicity = toxic
        .get("toxicity")
        .map_or_else(|| "?".to_owned(), Value::to_string);
    let mut line = format!(
        "{} ({}, {}, toxicity {toxicity})",
        str_field(toxic, "name"),
        str_field(toxic, "type"),
        str_field(toxic, "stream"),
    );
    if let Some(attributes) = toxic.get("attributes").and_then(Value::as_object) {
        let pairs: Vec<String> = attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if !pairs.is_empty() {
            line.push_str(": ");
            line.push_str(&pairs.join(" "));
        }
    }
    line
}

/// The API's address, checked once.
struct Api {
    base: Uri,
    authority: String,
}

impl Api {
    fn new(url: &str) -> Result<Self, Failure> {
        let base: Uri = url.trim_end_matches('/').parse().map_err(|e| {
            Failure::Usage(format!(
                "--url `{url}` is not a URL ({e}); give one like http://127.0.0.1:8474"
            ))
        })?;
        if base.scheme_str() != Some("http") {
            return Err(Failure::Usage(format!(
                "--url `{url}` must start with http:// (the chaos API speaks plain HTTP)"
            )));
        }
        let Some(authority) = base.authority().map(|a| a.as_str().to_owned()) else {
            return Err(Failure::Usage(format!(
                "--url `{url}` has no host; give one like http://127.0.0.1:8474"
            )));
        };
        let authority = if base.port_u16().is_some() {
            authority
        } else {
            format!("{authority}:80")
        };
        Ok(Self { base, authority })
    }

    /// One call; a 2xx body as JSON (`Null` when empty), anything else as the server's
    /// own error message.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let prefix = self.base.path().trim_end_matches('/');
        let uri = format!("{prefix}{path}");
        let what = format!("{method} {}{uri}", self.origin());
        match tokio::time::timeout(CALL_TIMEOUT, self.send(method, &uri, body)).await {
            Ok(Ok((status, bytes))) => interpret(status, &bytes, &what),
            Ok(Err(e)) => Err(Failure::Api(format!(
                "cannot reach the chaos API ({what}): {e}. Is `seawall chaos` running there? \
                 Point the client at it with --url or TOXIPROXY_URL."
            ))),
            Err(_) => Err(Failure::Api(format!(
                "the chaos API did not answer within {}s ({what})",
                CALL_TIMEOUT.as_secs()
            ))),
        }
    }

    fn origin(&self) -> String {
        format!("http://{}", self.authority)
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Bytes), Box<dyn std::error::Error + Send + Sync>> {
        let stream = tokio::net::TcpStream::connect(&self.authority).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        // The connection task ends with the response; its error, if any, surfaces there.
        let driver = tokio::spawn(connection);
        let bytes = match body {
            Some(value) => Bytes::from(serde_json::to_vec(&value)?),
            None => Bytes::new(),
        };
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::HOST, &self.authority)
            .header(
                http::header::USER_AGENT,
                concat!("seawall-chaos-cli/", env!("CARGO_PKG_VERSION")),
            )
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(bytes))?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        driver.abort();
        Ok((status, body))
    }
}

/// A response as the verb's result or as a readable error.
fn interpret(status: StatusCode, body: &[u8], what: &str) -> Result<Value, Failure> {
    let value: Option<Value> = if body.is_empty() {
        Some(Value::Null)
    } else {
        serde_json::from_slice(body).ok()
    };
    if status.is_success() {
        return value.ok_or_else(|| {
            Failure::Api(format!(
                "the chaos API answered {what} with a body that is not JSON: {}",
                String::from_utf8_lossy(body)
            ))
        });
    }
    // Toxiproxy's error shape: {"error": "...", "status": N}.
    let message = value
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(Value::as_str)
        .map_or_else(
            || String::from_utf8_lossy(body).trim().to_owned(),
            str::to_owned,
        );
    Err(Failure::Api(format!(
        "{message} (HTTP {}, {what})",
        status.as_u16()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_numbers_where_they_read_as_numbers() {
        let parsed = parse_attributes(&[
            "latency=100".into(),
            "jitter = 2.5".into(),
            "label=slow".into(),
        ])
        .unwrap();
        assert_eq!(parsed["latency"], json!(100));
        assert_eq!(parsed["jitter"], json!(2.5));
        assert_eq!(parsed["label"], json!("slow"));
        assert!(matches!(
            parse_attributes(&["latency".into()]),
            Err(Failure::Usage(m)) if m.contains("key=value")
        ));
        assert!(matches!(
            parse_attributes(&["=3".into()]),
            Err(Failure::Usage(_))
        ));
    }

    #[test]
    fn inspect_shows_the_protocol_of_an_http_proxy_only() {
        let proxy = json!({"name": "web", "listen": "127.0.0.1:1", "upstream": "127.0.0.1:2",
                           "enabled": true, "toxics": [], "protocol": "http"});
        assert!(inspect_text(&proxy).contains("Protocol  http"));
        let proxy = json!({"name": "db", "listen": "127.0.0.1:1", "upstream": "127.0.0.1:2",
                           "enabled": true, "toxics": []});
        assert!(!inspect_text(&proxy).contains("Protocol"));
    }

    #[test]
    fn names_are_one_path_segment() {
        assert_eq!(proxy_path("redis"), "/proxies/redis");
        assert_eq!(toxic_path("a/b", "x y?"), "/proxies/a%2Fb/toxics/x%20y%3F");
    }

    #[test]
    fn the_list_is_sorted_and_aligned() {
        let proxies = json!({
            "zeta": {"name": "zeta", "listen": "127.0.0.1:2", "upstream": "127.0.0.1:3", "enabled": false, "toxics": []},
            "alpha": {"name": "alpha", "listen": "127.0.0.1:20000", "upstream": "127.0.0.1:6379", "enabled": true,
                      "toxics": [{"name": "latency_downstream"}]},
        });
        let text = list_text(&proxies);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("NAME "));
        assert!(lines[1].starts_with("alpha "), "{text}");
        assert!(lines[1].ends_with("yes      1"), "{text}");
        assert!(lines[2].starts_with("zeta "), "{text}");
        // Columns line up: UPSTREAM starts at the same offset on every line.
        let col = lines[0].find("UPSTREAM").unwrap();
        assert_eq!(&lines[1][col..col + 9], "127.0.0.1");
        assert_eq!(&lines[2][col..col + 9], "127.0.0.1");
        assert!(list_text(&json!({})).starts_with("No proxies."));
    }

    #[test]
    fn errors_carry_the_servers_message_and_status() {
        let body = br#"{"error":"proxy already exists","status":409}"#;
        match interpret(StatusCode::CONFLICT, body, "POST /proxies") {
            Err(Failure::Api(m)) => {
                assert!(m.starts_with("proxy already exists (HTTP 409"), "{m}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            interpret(StatusCode::NO_CONTENT, b"", "DELETE").unwrap(),
            Value::Null
        );
    }

    #[test]
    fn a_url_without_http_is_a_usage_error() {
        assert!(matches!(Api::new("https://x:1"), Err(Failure::Usage(_))));
        assert!(matches!(Api::new("not a url"), Err(Failure::Usage(_))));
        let api = Api::new("http://127.0.0.1:8474/").unwrap();
        assert_eq!(api.authority, "127.0.0.1:8474");
        assert_eq!(
            Api::new("http://localhost").unwrap().authority,
            "localhost:80"
        );
    }

    #[test]
    fn toxicity_outside_zero_to_one_is_refused() {
        assert!(checked_toxicity(0.5).is_ok());
        assert!(matches!(checked_toxicity(1.5), Err(Failure::Usage(_))));
    }
}
