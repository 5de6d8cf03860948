'use strict'
// What every scenario file shares: the API client, people and their devices
// (each a separate in-memory WatermelonDB database with its own session, synced
// exactly as the README's sync section tells app developers to), and the check
// that WatermelonDB logged no diagnostic during a scenario.

const assert = require('node:assert/strict')
const { beforeEach, afterEach } = require('node:test')
const { Database } = require('@nozbe/watermelondb')
const LokiJSAdapter = require('@nozbe/watermelondb/adapters/lokijs').default
const { synchronize } = require('@nozbe/watermelondb/sync')
const logger = require('@nozbe/watermelondb/utils/common/logger').default

const BASE = process.env.ATTUNE_URL
if (!BASE) {
  throw new Error('ATTUNE_URL must point at a running Attune API')
}

// Everything WatermelonDB warns or complains about goes here; each scenario must end
// with none of it.
let diagnostics = []
for (const level of ['warn', 'error']) {
  logger[level] = (...messages) => diagnostics.push(`${level}: ${messages.map(String).join(' ')}`)
}
// The adapter's progress lines ("Database loaded") are not diagnostics.
logger.log = () => {}
beforeEach(() => {
  diagnostics = []
})
afterEach(() => {
  assert.deepEqual(diagnostics, [], 'WatermelonDB logged diagnostics during the scenario')
})

async function api(method, path, { token, body } = {}) {
  const response = await fetch(`${BASE}${path}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await response.text()
  return { status: response.status, body: text ? JSON.parse(text) : null }
}

class SyncRejected extends Error {
  constructor(status, body) {
    super(`push answered ${status}: ${JSON.stringify(body)}`)
    this.status = status
  }
}

let people = 0
const PASSWORD = 'a long and private passphrase'

// A person, and a way to sign in another of their devices running `app`
// (`{schema, migrations, modelClasses}`).
async function newPerson(app) {
  people += 1
  const email = `wm-${process.pid}-${people}-${Math.random().toString(36).slice(2, 8)}@example.org`
  const registered = await api('POST', '/v1/auth/register', {
    body: { email, password: PASSWORD, display_name: 'Sam', timezone: 'Europe/Berlin' },
  })
  assert.equal(registered.status, 201, JSON.stringify(registered.body))
  let first = registered.body.access_token
  return {
    email,
    async device(name) {
      let token = first
      first = null
      if (!token) {
        const login = await api('POST', '/v1/auth/login', { body: { email, password: PASSWORD } })
        assert.equal(login.status, 200, JSON.stringify(login.body))
        token = login.body.access_token
      }
      return new Device(name, token, app)
    },
  }
}

let databases = 0
class Device {
  constructor(name, token, app) {
    databases += 1
    this.name = name
    this.token = token
    this.app = app
    this.db = new Database({
      adapter: new LokiJSAdapter({
        schema: app.schema,
        // An app that will ever change its schema ships migrations from the start,
        // which is what migration syncs (`migrationsEnabledAtVersion`) need.
        migrations: app.migrations,
        useWebWorker: false,
        // No IndexedDB in Node: the adapter keeps the database in memory.
        useIncrementalIndexedDB: true,
        dbName: `attune-${process.pid}-${databases}`,
        // In memory; no autosave timer to keep Node running after the last scenario.
        extraLokiOptions: { autosave: false },
      }),
      modelClasses: app.modelClasses,
    })
  }

  async create(table, fields) {
    let record
    await this.db.write(async () => {
      record = await this.db.get(table).create((r) => {
        for (const [key, value] of Object.entries(fields)) r._setRaw(key, value)
      })
    })
    return record.id
  }

  async edit(table, id, fields) {
    await this.db.write(async () => {
      const record = await this.db.get(table).find(id)
      await record.update((r) => {
        for (const [key, value] of Object.entries(fields)) r._setRaw(key, value)
      })
    })
  }

  async remove(table, id) {
    await this.db.write(async () => {
      const record = await this.db.get(table).find(id)
      await record.markAsDeleted()
    })
  }

  // `id → {column: value}` of the records this device shows (not deleted).
  async records(table) {
    const all = await this.db.get(table).query().fetch()
    const columns = Object.keys(this.app.schema.tables[table].columns)
    return Object.fromEntries(
      all.map((r) => [r.id, Object.fromEntries(columns.map((c) => [c, r._raw[c]]))]),
    )
  }

  // One `synchronize()`, configured as the README says. `afterPull` runs once the
  // pull's answer is in hand and before it is applied; `beforePush` runs before
  // the push request is sent: the two windows in which a person can keep using
  // the app while a sync is in flight.
  async sync({ afterPull, beforePush } = {}) {
    await synchronize({
      database: this.db,
      sendCreatedAsUpdated: true,
      migrationsEnabledAtVersion: 1,
      pullChanges: async ({ lastPulledAt, schemaVersion, migration }) => {
        const query =
          `last_pulled_at=${lastPulledAt}&schema_version=${schemaVersion}` +
          `&migration=${encodeURIComponent(JSON.stringify(migration))}`
        const response = await api('GET', `/v1/sync?${query}`, { token: this.token })
        assert.equal(response.status, 200, JSON.stringify(response.body))
        if (afterPull) await afterPull()
        return response.body
      },
      pushChanges: async ({ changes, lastPulledAt }) => {
        if (beforePush) await beforePush()
        const response = await api('POST', `/v1/sync?last_pulled_at=${lastPulledAt}`, {
          token: this.token,
          body: changes,
        })
        if (response.status !== 200) throw new SyncRejected(response.status, response.body)
      },
    })
  }
}

// The synced tables and their columns at sync schema version 1, as the README
// gives them; version 2 (partners.js) adds to them.
const COLUMNS_V1 = {
  checkins: [
    { name: 'occurred_at', type: 'number' },
    { name: 'mood', type: 'number' },
    { name: 'anxiety', type: 'number' },
    { name: 'comfort', type: 'number' },
    { name: 'exercise_id', type: 'string', isOptional: true },
    { name: 'completed', type: 'boolean' },
    { name: 'note', type: 'string', isOptional: true },
    { name: 'tags', type: 'string', isOptional: true },
  ],
  journal_entries: [
    { name: 'step', type: 'number', isOptional: true },
    { name: 'prompt_id', type: 'string', isOptional: true },
    { name: 'body', type: 'string' },
    { name: 'occurred_at', type: 'number' },
  ],
  boundaries: [
    { name: 'kind', type: 'string' },
    { name: 'text', type: 'string' },
    { name: 'shared_with_partner', type: 'boolean' },
    { name: 'active', type: 'boolean' },
  ],
}

module.exports = { api, SyncRejected, PASSWORD, newPerson, Device, COLUMNS_V1 }
