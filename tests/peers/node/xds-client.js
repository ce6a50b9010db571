#!/usr/bin/env node
// xDS client peer for the interop tests: @grpc/grpc-js-xds resolving xds:/// targets through the
// bootstrap in GRPC_XDS_BOOTSTRAP_CONFIG (or GRPC_XDS_BOOTSTRAP), calling mesh.test.Echo/Say.
//
// Output: one JSON line per call on stdout,
//   {"i":0,"ok":true,"version":"v1","workload":"echo-v1-0","ms":3}
//   {"i":1,"ok":false,"code":14,"error":"..."}
// and a final {"done":true,"calls":N,"ok":M,"reason":"..."} line.
//
// Usage: node xds-client.js --proto echo.proto [--target xds:///echo.default.svc.cluster.local:9080]
//          [--count 200] [--metadata key=value]... [--call-timeout-ms 5000] [--deadline-ms 60000]
//          [--stream --interval-ms 20 --max-duration-ms 30000] [--max-failures 5]
// Bounded mode makes --count calls one after another. Stream mode calls every --interval-ms until
// stdin is closed or --max-duration-ms passes. Either stops after --max-failures failed calls, so a
// broken configuration is reported quickly. --deadline-ms always ends the process.
'use strict';

const path = require('path');

function parseArgs(argv) {
  const opts = {
    target: 'xds:///echo.default.svc.cluster.local:9080',
    proto: path.join(__dirname, '..', 'protos', 'echo.proto'),
    count: 10,
    metadata: [],
    callTimeoutMs: 5000,
    deadlineMs: 60000,
    stream: false,
    intervalMs: 20,
    maxDurationMs: 30000,
    maxFailures: 5,
  };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value after ${a}`);
      return argv[++i];
    };
    switch (a) {
      case '--target': opts.target = next(); break;
      case '--proto': opts.proto = next(); break;
      case '--count': opts.count = parseInt(next(), 10); break;
      case '--metadata': {
        const kv = next();
        const eq = kv.indexOf('=');
        if (eq <= 0) throw new Error(`--metadata expects key=value, got '${kv}'`);
        opts.metadata.push([kv.slice(0, eq), kv.slice(eq + 1)]);
        break;
      }
      case '--call-timeout-ms': opts.callTimeoutMs = parseInt(next(), 10); break;
      case '--deadline-ms': opts.deadlineMs = parseInt(next(), 10); break;
      case '--stream': opts.stream = true; break;
      case '--interval-ms': opts.intervalMs = parseInt(next(), 10); break;
      case '--max-duration-ms': opts.maxDurationMs = parseInt(next(), 10); break;
      case '--max-failures': opts.maxFailures = parseInt(next(), 10); break;
      default: throw new Error(`unknown argument '${a}'`);
    }
  }
  return opts;
}

function emit(obj) {
  // stdout to a pipe is synchronous on Linux, so every line is flushed as it is written.
  process.stdout.write(JSON.stringify(obj) + '\n');
}

let opts;
try {
  opts = parseArgs(process.argv);
} catch (e) {
  process.stderr.write(`xds-client: ${e.message}\n`);
  process.exit(2);
}

let calls = 0;
let okCalls = 0;
let finished = false;

function finish(reason, exitCode) {
  if (finished) return;
  finished = true;
  emit({ done: true, calls, ok: okCalls, reason });
  process.exit(exitCode);
}

// The overall deadline: the process always ends, whatever the channel does.
setTimeout(() => finish('deadline', 3), opts.deadlineMs).unref();

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
require('@grpc/grpc-js-xds').register();

const definition = protoLoader.loadSync(opts.proto, { keepCase: true, defaults: true });
const EchoClient = grpc.loadPackageDefinition(definition).mesh.test.Echo;
const client = new EchoClient(opts.target, grpc.credentials.createInsecure());

function callOnce(i) {
  return new Promise((resolve) => {
    const md = new grpc.Metadata();
    for (const [k, v] of opts.metadata) md.add(k, v);
    const started = Date.now();
    client.Say({ message: `call-${i}` }, md, { deadline: Date.now() + opts.callTimeoutMs }, (err, reply) => {
      calls++;
      const ms = Date.now() - started;
      if (err) {
        emit({ i, ok: false, code: err.code, error: err.details || err.message, ms });
      } else {
        okCalls++;
        emit({ i, ok: true, version: reply.version, workload: reply.workload, headers: reply.headers, ms });
      }
      resolve();
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  if (!opts.stream) {
    for (let i = 0; i < opts.count && !finished; i++) {
      await callOnce(i);
      if (calls - okCalls >= opts.maxFailures) { finish('max-failures', 0); return; }
    }
    finish('count', 0);
    return;
  }
  let stdinClosed = false;
  process.stdin.on('end', () => { stdinClosed = true; });
  process.stdin.on('close', () => { stdinClosed = true; });
  process.stdin.on('error', () => { stdinClosed = true; });
  process.stdin.resume();
  const stopAt = Date.now() + opts.maxDurationMs;
  for (let i = 0; !finished; i++) {
    if (stdinClosed) { finish('stdin-closed', 0); return; }
    if (Date.now() >= stopAt) { finish('max-duration', 0); return; }
    const next = Date.now() + opts.intervalMs;
    await callOnce(i);
    if (calls - okCalls >= opts.maxFailures) { finish('max-failures', 0); return; }
    const wait = next - Date.now();
    if (wait > 0) await sleep(wait);
  }
}

main().catch((e) => {
  process.stderr.write(`xds-client: ${e && e.stack ? e.stack : e}\n`);
  finish('exception', 1);
});
