-- wrk script for bench/ab.sh: jsonrpc_post.lua's tools/call as a 2026-07-28 client sends it,
-- with the routing headers (Mcp-Method, Mcp-Name) and an Origin (a browser-hosted client) that
-- bench/configs/mcp_routes.toml lists.

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["Mcp-Method"] = "tools/call"
wrk.headers["Mcp-Name"] = "echo"
wrk.headers["Origin"] = "http://bench.example"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call",'
  .. '"params":{"name":"echo","arguments":{"text":"hello from wrk"}}}'
