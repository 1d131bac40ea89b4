-- wrk script for bench/run.sh: small MCP JSON-RPC POSTs (a tools/call of the mock backend's
-- `echo` tool) over keep-alive connections. No request()/response() callbacks, so wrk builds the
-- request once and its per-request cost stays the same for every proxy.
--
-- done() prints one machine-readable BENCH line with wrk's own counters (the same ones behind
-- its "Requests/sec", "Latency Distribution", "Socket errors" and "Non-2xx or 3xx responses"
-- lines), with latencies in microseconds rather than wrk's rounded text.

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call",'
  .. '"params":{"name":"echo","arguments":{"text":"hello from wrk"}}}'

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d bytes=%d p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f "
      .. "connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
