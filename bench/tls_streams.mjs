// Opens N TLS connections to 127.0.0.1:PORT, each asking GET /sse?n=2&interval_ms=600000 (a
// stream whose next event is ten minutes away), waits until every response head and first
// event arrived, prints "open N", then holds them all until stdin closes or SIGTERM.
//   node bench/tls_streams.mjs PORT N
import tls from 'node:tls';

const [port, count] = process.argv.slice(2).map(Number);
if (!(port > 0) || !(count > 0)) {
  console.error('usage: node bench/tls_streams.mjs PORT N');
  process.exit(2);
}

const sockets = [];
function open() {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: 'localhost' }, () => {
      socket.write('GET /sse?n=2&interval_ms=600000 HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n');
    });
    let seen = '';
    const onData = (chunk) => {
      seen += chunk.toString('latin1');
      if (!seen.startsWith('HTTP/1.1 200')) return reject(new Error(`unexpected answer: ${seen.slice(0, 80)}`));
      if (seen.includes('\r\n\r\n') && seen.includes('data:')) {
        socket.off('data', onData);
        resolve();
      }
    };
    socket.on('data', onData);
    socket.on('error', reject);
    sockets.push(socket);
  });
}

// In batches, so that the proxy's accept queue and the handshakes keep up.
const batch = 100;
for (let i = 0; i < count; i += batch) {
  await Promise.all(Array.from({ length: Math.min(batch, count - i) }, open));
}
console.log(`open ${sockets.length}`);

const closeAll = () => {
  for (const s of sockets) s.destroy();
  process.exit(0);
};
process.stdin.on('end', closeAll);
process.stdin.resume();
process.on('SIGTERM', closeAll);
