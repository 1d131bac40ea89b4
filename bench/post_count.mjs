// Sends exactly COUNT JSON-RPC POSTs (the tools/call of bench/jsonrpc_post.lua) to
// http://127.0.0.1:PORT/mcp over CONNECTIONS keep-alive connections, and fails on any non-2xx
// answer. For bench/callgrind_ab.sh, which needs a request count, not a duration.
//   node bench/post_count.mjs PORT COUNT [CONNECTIONS=10] [2026]
// "2026": with Mcp-Method, Mcp-Name and an Origin (as bench/jsonrpc_post_2026.lua).
import http from 'node:http';

const [port, count, connections = '10', style = ''] = process.argv.slice(2);
const body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello from wrk"}}}';
const headers = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'Content-Length': Buffer.byteLength(body) };
if (style === '2026') Object.assign(headers, { 'Mcp-Method': 'tools/call', 'Mcp-Name': 'echo', Origin: 'http://bench.example' });
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(connections) });
let left = Number(count);
const one = () => new Promise((resolve, reject) => {
  const req = http.request({ host: '127.0.0.1', port: Number(port), method: 'POST', path: '/mcp', headers, agent }, (res) => {
    res.resume();
    res.on('end', () => (res.statusCode < 300 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
  });
  req.on('error', reject);
  req.end(body);
});
const worker = async () => { while (left-- > 0) await one(); };
await Promise.all(Array.from({ length: Number(connections) }, worker));
agent.destroy();
