// Contract tests of `seawall chaos` through the npm package `toxiproxy-node-client`,
// with Node's own test runner (`node --test`).
//
// Run by tests/toxiproxy-clients/run.sh against a server on 127.0.0.1:$CHAOS_PORT, with
// NODE_PATH pointing at the folder the package was installed in.

import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { Toxiproxy } = require("toxiproxy-node-client");

const PORT = Number(process.env.CHAOS_PORT ?? 8474);
const BASE = `http://127.0.0.1:${PORT}`;
const toxiproxy = new Toxiproxy(BASE);

let echo;
let echoAddress;

/** A loopback echo server on a free port. */
function startEcho() {
  return new Promise((resolve) => {
    const server = net.createServer((socket) => {
      socket.on("error", () => {});
      socket.pipe(socket);
    });
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

/** Sends `payload` through `address`, reads it back; resolves { data, ms }. */
function roundTrip(address, payload = "ping", timeoutMs = 5000) {
  const [host, port] = splitAddress(address);
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const socket = net.connect({ host, port }, () => socket.write(payload));
    let data = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no echo through ${address} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on("data", (chunk) => {
      data += chunk.toString();
      if (data.length >= payload.length) {
        clearTimeout(timer);
        socket.end();
        resolve({ data, ms: Number(process.hrtime.bigint() - start) / 1e6 });
      }
    });
    socket.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

function splitAddress(address) {
  const i = address.lastIndexOf(":");
  return [address.slice(0, i), Number(address.slice(i + 1))];
}

async function removeAll() {
  const all = await toxiproxy.getAll();
  for (const proxy of Object.values(all)) {
    await proxy.remove();
  }
}

async function createEcho(name = "echo") {
  return toxiproxy.createProxy({ name, listen: "127.0.0.1:0", upstream: echoAddress });
}

/** The status code of a rejected client call (the client throws on a non-2xx). */
async function statusOf(promise) {
  try {
    await promise;
  } catch (error) {
    const text = `${error?.message ?? ""} ${JSON.stringify(error ?? {})}`;
    const match = text.match(/\b(4\d\d|5\d\d)\b/);
    return match ? Number(match[1]) : text;
  }
  return "no error";
}

before(async () => {
  echo = await startEcho();
  echoAddress = `127.0.0.1:${echo.address().port}`;
});

after(async () => {
  await removeAll();
  echo.close();
});

beforeEach(removeAll);

test("version answers", async () => {
  const version = await toxiproxy.getVersion();
  assert.ok(version.length > 0);
});

test("create, get, list, and the real listen address", async () => {
  const proxy = await createEcho();
  assert.equal(proxy.name, "echo");
  assert.equal(proxy.upstream, echoAddress);
  assert.equal(proxy.enabled, true);
  const [host, port] = splitAddress(proxy.listen);
  assert.equal(host, "127.0.0.1");
  assert.notEqual(port, 0);
  const again = await toxiproxy.get("echo");
  assert.equal(again.listen, proxy.listen);
  assert.deepEqual(Object.keys(await toxiproxy.getAll()), ["echo"]);
  const { data } = await roundTrip(proxy.listen, "hello");
  assert.equal(data, "hello");
});

test("a duplicate proxy is 409 and a missing one 404", async () => {
  await createEcho();
  assert.equal(await statusOf(createEcho()), 409);
  assert.equal(await statusOf(toxiproxy.get("missing")), 404);
  const raw = await fetch(`${BASE}/proxies/missing`);
  assert.equal(raw.status, 404);
  const body = await raw.json();
  assert.equal(body.status, 404);
  assert.equal(typeof body.error, "string");
});

test("toxics: add with defaults, get, update merges, remove", async () => {
  const proxy = await createEcho();
  const toxic = await proxy.addToxic({ type: "latency", attributes: { latency: 50, jitter: 0 } });
  assert.equal(toxic.name, "latency_downstream");
  assert.equal(toxic.stream, "downstream");
  assert.equal(toxic.toxicity, 1);
  const fetched = await proxy.getToxic("latency_downstream");
  assert.equal(fetched.attributes.latency, 50);
  const updated = await fetched.update({ attributes: { jitter: 7 } });
  assert.deepEqual(updated.attributes, { latency: 50, jitter: 7 });
  assert.equal(await statusOf(proxy.addToxic({ name: "latency_downstream", type: "latency" })), 409);
  await updated.remove();
  assert.equal(await statusOf(proxy.getToxic("latency_downstream")), 404);
  const listed = await (await fetch(`${BASE}/proxies/echo/toxics`)).json();
  assert.deepEqual(listed, []);
});

test("every toxic type is accepted on both streams", async () => {
  const proxy = await createEcho();
  const kinds = {
    latency: { latency: 10, jitter: 1 },
    bandwidth: { rate: 100 },
    slow_close: { delay: 10 },
    timeout: { timeout: 10 },
    reset_peer: { timeout: 10 },
    slicer: { average_size: 32, size_variation: 4, delay: 5 },
    limit_data: { bytes: 100 },
  };
  for (const [type, attributes] of Object.entries(kinds)) {
    for (const stream of ["upstream", "downstream"]) {
      const toxic = await proxy.addToxic({ type, stream, attributes });
      assert.equal(toxic.name, `${type}_${stream}`);
      for (const [key, value] of Object.entries(attributes)) {
        assert.equal(toxic.attributes[key], value, `${type}.${key}`);
      }
    }
  }
  const again = await toxiproxy.get("echo");
  const body = await (await fetch(`${BASE}/proxies/echo`)).json();
  assert.equal(body.toxics.length, Object.keys(kinds).length * 2);
  assert.equal(again.name, "echo");
});

test("an unknown toxic type is 400", async () => {
  const proxy = await createEcho();
  assert.equal(await statusOf(proxy.addToxic({ type: "gremlin" })), 400);
});

test("latency is felt, and disabling closes the proxy", async () => {
  const proxy = await createEcho();
  await proxy.addToxic({ type: "latency", stream: "upstream", attributes: { latency: 250 } });
  const { ms } = await roundTrip(proxy.listen);
  assert.ok(ms >= 230, `a 250 ms toxic took ${ms} ms`);
  const disabled = await proxy.update({ enabled: false });
  assert.equal(disabled.enabled, false);
  await assert.rejects(roundTrip(proxy.listen, "ping", 1000));
  const enabled = await disabled.update({ enabled: true });
  assert.equal(enabled.enabled, true);
  const { data } = await roundTrip(proxy.listen);
  assert.equal(data, "ping");
});

test("reset removes every toxic and enables every proxy", async () => {
  const proxy = await createEcho();
  await proxy.addToxic({ type: "timeout", attributes: { timeout: 0 } });
  await proxy.update({ enabled: false });
  await toxiproxy.reset();
  const body = await (await fetch(`${BASE}/proxies/echo`)).json();
  assert.equal(body.enabled, true);
  assert.deepEqual(body.toxics, []);
  const { data } = await roundTrip(proxy.listen);
  assert.equal(data, "ping");
});

test("populate creates proxies, and a bad entry creates none", async () => {
  const created = await toxiproxy.populate([
    { name: "one", listen: "127.0.0.1:0", upstream: echoAddress },
    { name: "two", listen: "127.0.0.1:0", upstream: echoAddress },
  ]);
  assert.deepEqual(Object.keys(created).sort(), ["one", "two"]);
  const bad = await fetch(`${BASE}/populate`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify([
      { name: "three", listen: "127.0.0.1:0", upstream: echoAddress },
      { name: "four", listen: "127.0.0.1:0" },
    ]),
  });
  assert.equal(bad.status, 400);
  assert.deepEqual(Object.keys(await toxiproxy.getAll()).sort(), ["one", "two"]);
});

test("an http proxy and its extra protocol field are read by the client", async () => {
  const raw = await fetch(`${BASE}/proxies`, {
    method: "POST",
    body: JSON.stringify({ name: "web", listen: "127.0.0.1:0", upstream: echoAddress, protocol: "http" }),
  });
  assert.equal(raw.status, 201);
  const created = await raw.json();
  assert.equal(created.protocol, "http");
  const proxy = await toxiproxy.get("web");
  assert.equal(proxy.listen, created.listen);
  assert.deepEqual(Object.keys(await toxiproxy.getAll()), ["web"]);
  const toxic = await proxy.addToxic({ type: "http_delay", attributes: { delay: 10 } });
  assert.equal(toxic.type, "http_delay");
});

test("a malformed body is 400 with Toxiproxy's error shape", async () => {
  const r = await fetch(`${BASE}/proxies`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{not json",
  });
  assert.equal(r.status, 400);
  const body = await r.json();
  assert.equal(body.status, 400);
  assert.equal(typeof body.error, "string");
});
