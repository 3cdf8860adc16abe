// Drives Xen Orchestra's real connector, npm `xen-api` 4.7.6, against a running xenledger server.
//
//   node tests/interop/xo/scenario.mjs <url> <root password> [user]
//
// A "watcher" client connects the way Xen Orchestra does (JSON-RPC, login, pool.get_all_records,
// system.listMethods, event.inject, <Class>.get_all_records for every class, event.from loop) and
// keeps its `objects` collection up to date. A second "actor" client (no event loop) creates,
// renames and destroys a network; the watcher must see add / update / remove for it. Then the
// actor logs the watcher's session out behind its back (session.logout with the watcher's ref):
// the watcher must notice (its blocked event.from answers SESSION_INVALID), log in again, refetch
// and keep receiving events. Exits 0 when every check passed, 1 otherwise, printing each check.
//
// The checks lean on a few private members of xen-api 4.7.6 (version pinned in package.json):
// `_transport` (wrapped to trace every RPC), `_types` (classes from system.listMethods) and
// `_call` (raw call without the session prefix, how xen-api itself sends session.logout).
import dc from 'node:diagnostics_channel'
import { createClient } from 'xen-api'

const STEP_TIMEOUT = 15e3
const CONNECT_TIMEOUT = 30e3

const [url, password, user = 'root'] = process.argv.slice(2)
if (url === undefined || password === undefined) {
  console.error('usage: node scenario.mjs <url> <password> [user]')
  process.exit(2)
}

class CheckFailed extends Error {}

const t0 = Date.now()
const stamp = () => `[xo +${((Date.now() - t0) / 1e3).toFixed(2)}s]`
const step = msg => console.log(`${stamp()} == ${msg}`)
const ok = msg => console.log(`${stamp()}    ok: ${msg}`)
const note = msg => console.log(`${stamp()}    note: ${msg}`)
function check(cond, msg) {
  if (!cond) throw new CheckFailed(msg)
}
// A deviation xen-api itself survives (it only logs a warning): recorded, reported at the end and
// fails the run, but the scenario goes on so that one run shows every problem.
const softFailures = []
function soft(cond, msg) {
  if (!cond) {
    softFailures.push(msg)
    console.log(`${stamp()}    FAIL (continuing): ${msg}`)
  }
  return cond
}
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

function withTimeout(promise, ms, what) {
  let timer
  return Promise.race([
    promise,
    new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new CheckFailed(`timed out after ${ms / 1e3}s: ${what}`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

// --- HTTP-level trace (undici publishes on node:diagnostics_channel) -----------------------------
const http = []
dc.subscribe('undici:request:create', ({ request }) => {
  http.push({ request, method: request.method, origin: String(request.origin), path: request.path })
})
dc.subscribe('undici:request:headers', ({ request, response }) => {
  const rec = http.find(r => r.request === request)
  if (rec === undefined) return
  rec.status = response.statusCode
  const raw = response.headers ?? []
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (String(raw[i]).toLowerCase() === 'content-type') rec.contentType = String(raw[i + 1])
  }
})

// --- RPC-level trace: wrap the client's transport -----------------------------------------------
const short = s => (typeof s === 'string' && s.length > 22 ? s.slice(0, 22) + '…' : s)
function trace(xapi, name) {
  const calls = []
  const transport = xapi._transport
  check(typeof transport === 'function', 'xen-api internals changed: no _transport function')
  xapi._transport = (method, args) => {
    const rec = { client: name, method, args, start: Date.now() }
    calls.push(rec)
    rec.promise = transport(method, args).then(
      result => {
        rec.end = Date.now()
        rec.result = result
        return result
      },
      error => {
        rec.end = Date.now()
        rec.error = error
        throw error
      }
    )
    return rec.promise
  }
  return calls
}
function describeCall(rec) {
  const args =
    rec.method === 'session.login_with_password'
      ? '<credentials>'
      : (rec.args ?? []).map(a => (typeof a === 'string' ? short(a) : JSON.stringify(a)?.slice(0, 60))).join(', ')
  const outcome =
    rec.end === undefined
      ? 'still pending'
      : rec.error !== undefined
        ? `FAILED ${rec.error.code ?? ''} ${rec.error.message}`
        : 'ok'
  const dur = rec.end === undefined ? '' : ` in ${rec.end - rec.start}ms`
  return `${rec.client} +${((rec.start - t0) / 1e3).toFixed(2)}s ${rec.method}(${args}) -> ${outcome}${dur}`
}

// Resolves with [id, object] on the first `event` ('add' | 'update' | 'remove') of the collection
// that matches; objects of 'remove' events are undefined (xo-collection only gives the ids).
function waitForObjectEvent(xapi, event, predicate, what) {
  let listener
  const promise = new Promise(resolve => {
    listener = items => {
      for (const id of Object.keys(items)) {
        if (predicate(id, items[id])) {
          resolve([id, items[id]])
          return
        }
      }
    }
    xapi.objects.on(event, listener)
  })
  return withTimeout(promise, STEP_TIMEOUT, `watcher's objects collection '${event}' event: ${what}`).finally(() =>
    xapi.objects.removeListener(event, listener)
  )
}

function waitForTrace(calls, predicate, what, ms = STEP_TIMEOUT) {
  return withTimeout(
    (async () => {
      for (;;) {
        const rec = calls.find(predicate)
        if (rec !== undefined) return rec
        await sleep(50)
      }
    })(),
    ms,
    what
  )
}

// Network events the watcher received on the wire (from event.from results, in order).
function wireEvents(calls, ref) {
  const out = []
  for (const rec of calls) {
    if (rec.method !== 'event.from' || rec.result === undefined) continue
    for (const ev of rec.result.events ?? []) if (ev.ref === ref) out.push(ev)
  }
  return out
}

let watcher, actor
let watcherCalls = [],
  actorCalls = []

async function main() {
  console.log(`${stamp()} xen-api 4.7.6 scenario against ${url} as ${user}`)
  const auth = { user, password }

  // ---------------------------------------------------------------------------------------------
  step('watcher: connect and load every class (the Xen Orchestra connect sequence)')
  watcher = createClient({ url, auth, allowUnauthorized: true })
  watcherCalls = trace(watcher, 'watcher')
  const watcherSessions = []
  watcher.on('sessionId', id => watcherSessions.push(id))
  watcher.on('eventFetchingError', error => note(`watcher event.from error: ${error?.code ?? ''} ${error?.message}`))

  await withTimeout(watcher.connect(), CONNECT_TIMEOUT, 'watcher.connect()')
  check(watcher.status === 'connected', `watcher status is ${watcher.status} after connect()`)
  const firstSid = watcher.sessionId
  check(typeof firstSid === 'string' && firstSid.length > 0, `bad session id ${JSON.stringify(firstSid)}`)
  ok(`connected, session ${short(firstSid)}`)

  await withTimeout(watcher.objectsFetched, CONNECT_TIMEOUT, 'watcher.objectsFetched (initial get_all_records of every class)')
  ok('objectsFetched resolved')

  const seq = watcherCalls.map(r => r.method)
  const expectedStart = ['session.login_with_password', 'pool.get_all_records', 'system.listMethods', 'event.inject']
  check(
    expectedStart.every((m, i) => seq[i] === m),
    `connect sequence was ${JSON.stringify(seq.slice(0, 6))}, expected it to start with ${JSON.stringify(expectedStart)}`
  )
  ok(`connect sequence: ${expectedStart.join(' -> ')} -> <Class>.get_all_records ...`)

  const listMethods = watcherCalls.find(r => r.method === 'system.listMethods')
  check(Array.isArray(listMethods.result), 'system.listMethods did not return an array')
  const types = watcher._types
  check(Array.isArray(types) && types.length > 0, `no classes derived from system.listMethods: ${JSON.stringify(types)}`)
  for (const t of ['pool', 'host', 'network', 'task', 'VM', 'SR']) {
    check(types.includes(t), `system.listMethods lists no ${t}.get_all_records (classes: ${types.join(' ')})`)
  }
  const inject = watcherCalls.find(r => r.method === 'event.inject')
  check(inject.error === undefined, `event.inject failed: ${inject.error?.code} ${inject.error?.message}`)
  check(typeof inject.result === 'string' && inject.result !== '', `event.inject returned ${JSON.stringify(inject.result)}`)
  ok(`event.inject("pool", ${short(inject.args[2])}) -> token ${inject.result}`)

  const failedClasses = []
  const removedClasses = []
  for (const type of types) {
    const recs = watcherCalls.filter(r => r.method === `${type}.get_all_records`)
    if (recs.length === 0) failedClasses.push(`${type}: never fetched`)
    // Removed from the API (VMPP, VIF_metrics, VBD_metrics): xapi's generated server lists them in
    // system.listMethods too and answers MESSAGE_REMOVED (gen_server.ml); xen-api skips them.
    else if (recs.every(r => r.error?.code === 'MESSAGE_REMOVED')) removedClasses.push(type)
    else if (!recs.some(r => r.error === undefined && r.result !== null && typeof r.result === 'object'))
      failedClasses.push(`${type}: ${recs.map(r => `${r.error?.code ?? ''} ${r.error?.message ?? typeof r.result}`).join('; ')}`)
  }
  if (removedClasses.length > 0) ok(`MESSAGE_REMOVED, as from xapi, for the removed classes: ${removedClasses.join(' ')}`)
  if (
    soft(
      failedClasses.length === 0,
      `<Class>.get_all_records failed for ${failedClasses.length} of the ${types.length} classes listed by system.listMethods (xen-api logs it and leaves those classes empty):\n      ${failedClasses.join('\n      ')}`
    )
  )
    ok(`get_all_records succeeded for all ${types.length} classes listed by system.listMethods`)

  const byType = {}
  for (const obj of Object.values(watcher.objects.all)) byType[obj.$type] = (byType[obj.$type] ?? 0) + 1
  check(byType.pool === 1, `expected exactly one pool object, got ${byType.pool ?? 0}`)
  check(watcher.pool !== null && watcher.getObjectByRef(watcher.pool.$ref, undefined) !== undefined, 'pool not in cache')
  check((byType.host ?? 0) >= 1, 'no host object loaded')
  const master = watcher.pool.$master
  check(master !== undefined && master.$type === 'host', `pool.master ${watcher.pool.master} is not a cached host`)
  check(typeof master.address === 'string', `master host has no string address: ${JSON.stringify(master.address)}`)
  check(
    watcher.pool.other_config !== null && typeof watcher.pool.other_config === 'object',
    'pool.other_config is not a map'
  )
  ok(
    `cache: ${Object.entries(byType)
      .map(([t, n]) => `${t}=${n}`)
      .join(' ')}; pool.master -> host "${master.name_label}" (${master.address})`
  )

  const firstFrom = await waitForTrace(watcherCalls, r => r.method === 'event.from', 'watcher starts its event.from loop')
  check(firstFrom.args[0] === firstSid, 'event.from not sent with the current session')
  check(JSON.stringify(firstFrom.args[1]) === JSON.stringify(types), 'event.from not given every class')
  check(firstFrom.args[2] === inject.result, 'first event.from does not use the event.inject token')
  ok(`event.from(session, <${types.length} classes>, ${inject.result}, ${firstFrom.args[3]}) loop running`)

  // ---------------------------------------------------------------------------------------------
  step('watcher: barrier() (pool.add_to_other_config, then wait for the pool mod event)')
  await withTimeout(watcher.barrier(), STEP_TIMEOUT, 'watcher.barrier()')
  ok('barrier resolved: pool mod event carrying the xo:barrier key was seen')

  // ---------------------------------------------------------------------------------------------
  step('actor: second client (no event loop) connects')
  actor = createClient({ url, auth, allowUnauthorized: true, watchEvents: false })
  actorCalls = trace(actor, 'actor')
  await withTimeout(actor.connect(), CONNECT_TIMEOUT, 'actor.connect()')
  const actorSid = actor.sessionId
  check(actorSid !== firstSid, 'actor got the same session ref as the watcher')
  ok(`actor connected, session ${short(actorSid)}`)

  // ---------------------------------------------------------------------------------------------
  step('network lifecycle made by the actor, seen by the watcher')
  const name = `xo-interop-${process.pid}-${Date.now()}`
  const pAdd = waitForObjectEvent(watcher, 'add', (id, o) => o?.$type === 'network' && o.name_label === name, `network "${name}" added`)
  const ref = await actor.call('network.create', {
    name_label: name,
    name_description: 'created by the xen-api 4.7.6 interop scenario',
    other_config: {},
  })
  check(typeof ref === 'string' && ref.startsWith('OpaqueRef:'), `network.create returned ${JSON.stringify(ref)}`)
  const [netId, added] = await pAdd
  check(added.$ref === ref, `added network has ref ${added.$ref}, network.create returned ${ref}`)
  check(typeof added.uuid === 'string' && netId === added.uuid, `network $id ${netId} is not its uuid ${added.uuid}`)
  ok(`add: ${short(ref)} uuid ${added.uuid} name_label "${added.name_label}"`)

  const newName = `${name}-renamed`
  const pMod = waitForObjectEvent(watcher, 'update', (id, o) => o?.$ref === ref && o.name_label === newName, `network renamed to "${newName}"`)
  await actor.call('network.set_name_label', ref, newName)
  await pMod
  check(watcher.getObjectByRef(ref).name_label === newName, 'cached network not renamed')
  ok(`mod: name_label "${newName}"`)

  const pDel = waitForObjectEvent(watcher, 'remove', id => id === netId, `network ${netId} removed`)
  await actor.call('network.destroy', ref)
  await pDel
  check(watcher.getObjectByRef(ref, undefined) === undefined, 'destroyed network still in the watcher cache')
  ok('del: network gone from the watcher cache')

  const ops = wireEvents(watcherCalls, ref)
  const opNames = ops.map(e => e.operation)
  check(opNames[0] === 'add', `first event.from event for the network is ${JSON.stringify(opNames[0])}, expected "add" (all: ${JSON.stringify(opNames)})`)
  check(
    ops.some(e => e.operation === 'mod' && e.snapshot?.name_label === newName),
    `no event.from "mod" event with the new name_label (ops: ${JSON.stringify(opNames)})`
  )
  check(opNames[opNames.length - 1] === 'del', `last event.from event for the network is not "del" (ops: ${JSON.stringify(opNames)})`)
  for (const e of ops) {
    check(e.class === 'network', `event class ${JSON.stringify(e.class)}, expected "network"`)
    if (e.operation !== 'del') check(e.snapshot?.uuid === added.uuid, `${e.operation} event without a full snapshot`)
  }
  ok(`wire events for the network: ${opNames.join(', ')} (class "network")`)

  const froms = watcherCalls.filter(r => r.method === 'event.from' && r.result !== undefined)
  for (const r of froms) {
    const res = r.result
    check(typeof res.token === 'string' && Array.isArray(res.events), `malformed event.from result ${JSON.stringify(res).slice(0, 200)}`)
    check(
      res.valid_ref_counts !== null && typeof res.valid_ref_counts === 'object' && typeof res.valid_ref_counts.task === 'number',
      `event.from valid_ref_counts.task must be a number: ${JSON.stringify(res.valid_ref_counts)?.slice(0, 200)}`
    )
  }
  ok(`${froms.length} event.from results well-formed (token, events, numeric valid_ref_counts.task)`)

  // ---------------------------------------------------------------------------------------------
  step("session.logout of the watcher's session, behind its back")
  // Log out while the watcher's event.from is blocked in the server (the usual state of an idle
  // Xen Orchestra connection): xapi then answers that call SESSION_INVALID at once.
  const blocked = await waitForTrace(
    watcherCalls,
    r => r.method === 'event.from' && r.end === undefined && Date.now() - r.start > 300,
    'an event.from of the watcher blocked in the server'
  )
  const logoutAt = Date.now()
  const pRelogin = withTimeout(
    new Promise(resolve => {
      const onSession = id => {
        if (id !== firstSid) {
          watcher.removeListener('sessionId', onSession)
          resolve(id)
        }
      }
      watcher.on('sessionId', onSession)
    }),
    STEP_TIMEOUT,
    'watcher logs in again after its session was logged out'
  )
  pRelogin.catch(() => {})
  const logoutResult = await actor._call('session.logout', [firstSid])
  ok(`actor: session.logout(${short(firstSid)}) -> ${JSON.stringify(logoutResult)}`)
  let stale
  try {
    stale = await actor._call('pool.get_all', [firstSid])
  } catch (error) {
    stale = error
  }
  check(
    stale?.code === 'SESSION_INVALID',
    `pool.get_all with the logged-out session should fail SESSION_INVALID, got ${stale?.code ?? JSON.stringify(stale)}`
  )
  ok(`logged-out session rejected: ${stale.code}(${stale.params.join(', ')})`)

  await withTimeout(
    blocked.promise.catch(() => {}),
    STEP_TIMEOUT,
    `the watcher's event.from (timeout 60.1 s) that was blocked during session.logout returns (xapi wakes it with SESSION_INVALID)`
  )
  check(
    blocked.error?.code === 'SESSION_INVALID',
    `the event.from blocked during session.logout ended with ${blocked.error ? `${blocked.error.code} ${blocked.error.message}` : 'success: ' + JSON.stringify(blocked.result).slice(0, 200)}, expected SESSION_INVALID`
  )
  ok(`blocked event.from woken ${blocked.end - logoutAt}ms after the logout with ${blocked.error.code}`)

  const newSid = await pRelogin
  ok(`watcher logged in again ${Date.now() - logoutAt}ms after the logout, new session ${short(newSid)}`)
  check(watcher.status === 'connected', `watcher status is ${watcher.status} after re-login`)
  await waitForTrace(
    watcherCalls,
    r => r.method === 'event.from' && r.args[0] === newSid && r.start > logoutAt,
    'watcher resumes its event.from loop with the new session'
  )
  const relog = watcherCalls.filter(r => r.start >= logoutAt)
  const relogSeq = relog.map(r => r.method)
  check(relogSeq.includes('session.login_with_password'), `no login after the logout (calls: ${relogSeq.join(', ')})`)
  const reinject = relog.find(r => r.method === 'event.inject' && r.args[0] === newSid)
  check(reinject !== undefined && reinject.error === undefined, `no successful event.inject on the new session (calls: ${relogSeq.join(', ')})`)
  const refetched = relog.filter(r => r.method.endsWith('.get_all_records') && r.args[0] === newSid).length
  ok(
    `event loop restarted on the new session: ${relogSeq.slice(0, relogSeq.indexOf('event.inject', relogSeq.indexOf('session.login_with_password')) + 1).join(' -> ')} -> ${refetched} get_all_records -> event.from`
  )

  // ---------------------------------------------------------------------------------------------
  step('after recovery: the watcher keeps receiving events')
  const name2 = `${name}-after-relogin`
  const pAdd2 = waitForObjectEvent(watcher, 'add', (id, o) => o?.$type === 'network' && o.name_label === name2, `network "${name2}" added after re-login`)
  const ref2 = await actor.call('network.create', { name_label: name2, name_description: '', other_config: {} })
  const [net2Id] = await pAdd2
  ok(`add seen after re-login: ${short(ref2)}`)

  // Through the watcher itself: Async.network.destroy, result read from the task seen in events
  // (the way Xen Orchestra calls everything that has side effects).
  const pDel2 = waitForObjectEvent(watcher, 'remove', id => id === net2Id, `network ${net2Id} removed`)
  const asyncResult = await withTimeout(
    watcher.callAsync('network.destroy', ref2),
    STEP_TIMEOUT,
    'watcher.callAsync("network.destroy") settles (task seen through event.from)'
  )
  await pDel2
  ok(`watcher.callAsync('network.destroy') -> ${JSON.stringify(asyncResult)}; del seen`)
  check(watcher.getObjectByRef(ref2, undefined) === undefined, 'second network still in the watcher cache')

  // ---------------------------------------------------------------------------------------------
  step('transport')
  const rpcHttp = http.filter(r => r.method === 'POST')
  const notJson = rpcHttp.filter(r => r.path !== '/jsonrpc')
  check(notJson.length === 0, `xen-api left JSON-RPC: POSTs to ${[...new Set(notJson.map(r => r.path))].join(', ')}`)
  const badCt = rpcHttp.filter(r => r.contentType !== undefined && r.contentType !== 'application/json')
  check(badCt.length === 0, `JSON-RPC replies with Content-Type ${JSON.stringify(badCt[0]?.contentType)} (must be exactly application/json)`)
  const badStatus = rpcHttp.filter(r => r.status !== undefined && r.status !== 200)
  check(badStatus.length === 0, `HTTP status ${badStatus[0]?.status} on ${badStatus[0]?.path}`)
  ok(`${rpcHttp.length} requests, all POST /jsonrpc answered 200 application/json`)

  // ---------------------------------------------------------------------------------------------
  step('disconnect')
  await watcher.disconnect()
  await actor.disconnect()
  const logouts = [...watcherCalls, ...actorCalls].filter(r => r.method === 'session.logout' && r.start > logoutAt)
  await withTimeout(Promise.allSettled(logouts.map(r => r.promise)), STEP_TIMEOUT, 'session.logout on disconnect')
  for (const r of logouts) check(r.error === undefined, `session.logout on disconnect failed: ${r.error?.code} ${r.error?.message}`)
  ok(`both clients logged out (${logouts.length} session.logout calls)`)
}

function dumpTrace() {
  const all = [...watcherCalls, ...actorCalls].sort((a, b) => a.start - b.start)
  console.log(`--- last RPCs (${all.length} in all) ---`)
  for (const rec of all.slice(-40)) console.log('  ' + describeCall(rec))
  const odd = http.filter(r => r.path !== '/jsonrpc' || (r.contentType && r.contentType !== 'application/json') || (r.status && r.status !== 200))
  if (odd.length) {
    console.log('--- unexpected HTTP exchanges ---')
    for (const r of odd.slice(0, 10)) console.log(`  ${r.method} ${r.origin}${r.path} -> ${r.status} ${r.contentType}`)
  }
}

function die(prefix, error) {
  console.log(`${stamp()} FAILED: ${prefix}${error instanceof CheckFailed ? error.message : error?.stack ?? error}`)
  for (const msg of softFailures) console.log(`  also failed earlier: ${msg}`)
  if (error?.code !== undefined) console.log(`  XAPI error ${error.code} ${JSON.stringify(error.params)} call ${JSON.stringify(error.call)}`)
  dumpTrace()
  process.exit(1)
}
process.on('unhandledRejection', error => die('unhandled rejection inside xen-api: ', error))
process.on('uncaughtException', error => die('uncaught exception inside xen-api: ', error))

main().then(
  () => {
    if (softFailures.length > 0) {
      console.log(`${stamp()} FAILED: ${softFailures.length} check(s) failed although the scenario ran to the end:`)
      for (const msg of softFailures) console.log(`  - ${msg}`)
      process.exit(1)
    }
    console.log(`${stamp()} PASSED: all xen-api 4.7.6 checks`)
    process.exit(0)
  },
  error => die('', error)
)
