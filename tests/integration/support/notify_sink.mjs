// A fake service-manager notify socket (systemd Type=notify) for the tests: runs
// turnout-notify-sink (tests/support/notify_sink.cpp), which prints each datagram it receives
// as one JSON string per line, and parses those into messages.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Child, tempDir, waitUntil } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

function findSink() {
  if (process.env.TURNOUT_NOTIFY_SINK_BIN) return process.env.TURNOUT_NOTIFY_SINK_BIN;
  const guess = path.resolve(here, '..', '..', '..', 'build', 'turnout-notify-sink');
  return existsSync(guess) ? guess : null;
}

export const NOTIFY_SINK_BIN = findSink();
let sinks = 0;

/** One datagram: its raw text and its VAR=VALUE assignments. */
function parseMessage(text) {
  const fields = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) fields[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return { text, fields };
}

export class NotifySink {
  constructor(name, child) {
    this.name = name; // the NOTIFY_SOCKET value
    this.child = child;
  }

  /** Every datagram received so far, oldest first. */
  messages() {
    return this.child.stdout
      .split('\n')
      .filter((line) => line.startsWith('"'))
      .map((line) => parseMessage(JSON.parse(line)));
  }

  /**
   * Waits (bounded) for a message at index >= `from` that satisfies `pred(fields, text)`;
   * resolves with {index, fields, text}.
   */
  waitFor(pred, { from = 0, timeout = 10000, what = String(pred) } = {}) {
    return waitUntil(() => {
      const all = this.messages();
      for (let i = from; i < all.length; i++) {
        if (pred(all[i].fields, all[i].text)) return { index: i, ...all[i] };
      }
      return null;
    }, timeout, `notify message ${what}; got ${JSON.stringify(this.messages().map((m) => m.text))}`);
  }
}

/** Starts a sink on a socket path in a temp folder, or on an abstract name (`abstract: true`). */
export async function startNotifySink(scope, { abstract = false } = {}) {
  if (!NOTIFY_SINK_BIN) throw new Error('TURNOUT_NOTIFY_SINK_BIN is not set and no default build was found');
  const name = abstract
    ? `@turnout-it-${process.pid}-${++sinks}-${Math.random().toString(36).slice(2)}`
    : path.join(tempDir(scope), 'notify.sock');
  const child = new Child('notify sink', NOTIFY_SINK_BIN, [name, '--lifetime-s', '300']);
  scope.track(child);
  await child.waitForMatches(/^bound /m, { stream: 'stdout', timeout: 5000 });
  return new NotifySink(name, child);
}
