'use strict'
// Sync scenarios driven by WatermelonDB's own `synchronize()` (LokiJS adapter, in
// memory) against a running Attune API at $ATTUNE_URL. Each device is a separate
// WatermelonDB database signed in with its own session, configured exactly as the
// README's sync section tells app developers to. Every scenario ends with a fresh
// device, checks the record sets (and values) on every device, that nothing is left
// unsynced, and that WatermelonDB logged no `[Sync]` diagnostic.
//
// Run by `cargo test -p attune-tests --test watermelon`, which starts the API on
// SQLite or on PostgreSQL + Redis and installs the pinned packages of this folder.

const assert = require('node:assert/strict')
const { test } = require('node:test')
const { Model, appSchema, tableSchema } = require('@nozbe/watermelondb')
const { schemaMigrations } = require('@nozbe/watermelondb/Schema/migrations')
const { hasUnsyncedChanges } = require('@nozbe/watermelondb/sync')
const client = require('./client')

const { SyncRejected } = client

// The app's schema, version 1: the synced tables and columns of the README.
const schema = appSchema({
  version: 1,
  tables: Object.entries(client.COLUMNS_V1).map(([name, columns]) => tableSchema({ name, columns })),
})

class Checkin extends Model {
  static table = 'checkins'
}
class JournalEntry extends Model {
  static table = 'journal_entries'
}
class Boundary extends Model {
  static table = 'boundaries'
}

// The app at schema version 1 (its migrations start empty).
const APP = { schema, migrations: schemaMigrations({ migrations: [] }), modelClasses: [Checkin, JournalEntry, Boundary] }
const newPerson = () => client.newPerson(APP)

const NOW = Date.UTC(2026, 10, 30, 20, 0, 0)
// A new record of each table, and the private text field an edit changes.
const TABLES = {
  checkins: {
    text: 'note',
    fields: (n) => ({ occurred_at: NOW + n, mood: 3, anxiety: 2, comfort: 4, completed: false, note: `evening ${n}` }),
  },
  journal_entries: {
    text: 'body',
    fields: (n) => ({ step: 1, body: `where the silence started ${n}`, occurred_at: NOW + n }),
  },
  boundaries: {
    text: 'text',
    fields: (n) => ({ kind: 'emotional', text: `ask before a hug ${n}`, shared_with_partner: false, active: true }),
  },
}

// Every device syncs until quiet, then a fresh device joins: all hold `expected`
// (table → id → fields, or table → [ids]) and nothing is left to push.
async function assertConverged(person, devices, expected) {
  for (let round = 0; round < 2; round += 1) {
    for (const device of devices) await device.sync()
  }
  const fresh = await person.device('fresh install')
  await fresh.sync()
  for (const device of [...devices, fresh]) {
    assert.equal(await hasUnsyncedChanges({ database: device.db }), false, `${device.name} has unsynced changes`)
    for (const table of Object.keys(TABLES)) {
      const held = await device.records(table)
      const want = expected[table] ?? []
      if (Array.isArray(want)) {
        assert.deepEqual(Object.keys(held).sort(), [...want].sort(), `${device.name}: ${table}`)
      } else {
        assert.deepEqual(held, want, `${device.name}: ${table}`)
      }
    }
  }
  return fresh
}

for (const [table, spec] of Object.entries(TABLES)) {
  test(`${table}: what the writing device deletes stays deleted on every device`, async () => {
    const person = await newPerson()
    const phone = await person.device('phone')
    const tablet = await person.device('tablet')
    await phone.sync()
    await tablet.sync()
    const gone = await phone.create(table, spec.fields(1))
    const kept = await phone.create(table, spec.fields(2))
    await phone.sync()
    await tablet.sync()
    assert.deepEqual(Object.keys(await tablet.records(table)).sort(), [gone, kept].sort())

    // The report: written, synced, deleted on the phone, synced again. The phone's
    // next pull carries its own earlier writes; the deletion must survive it.
    await phone.remove(table, gone)
    await phone.sync()
    assert.deepEqual(Object.keys(await phone.records(table)), [kept], 'deleted record came back on the phone')
    await tablet.sync()
    assert.deepEqual(Object.keys(await tablet.records(table)), [kept], 'deleted record stayed on the tablet')
    await assertConverged(person, [phone, tablet], { [table]: [kept] })
  })

  test(`${table}: a record deleted right after the sync that pushed it stays deleted`, async () => {
    const person = await newPerson()
    const phone = await person.device('phone')
    await phone.sync()
    const id = await phone.create(table, spec.fields(1))
    await phone.sync()
    await phone.remove(table, id)
    await phone.sync()
    await phone.sync()
    assert.deepEqual(Object.keys(await phone.records(table)), [])
    await assertConverged(person, [phone], { [table]: [] })
  })

  test(`${table}: a deletion made while the pull is in flight stays deleted`, async () => {
    const person = await newPerson()
    const phone = await person.device('phone')
    await phone.sync()
    const id = await phone.create(table, spec.fields(1))
    await phone.sync()
    // The next pull carries `id` (the phone's own write of its previous sync); the
    // person deletes it after that pull was answered and before it is applied.
    await phone.sync({ afterPull: () => phone.remove(table, id) })
    assert.deepEqual(Object.keys(await phone.records(table)), [])
    await assertConverged(person, [phone], { [table]: [] })
  })

  test(`${table}: a deletion made while the push is in flight stays deleted`, async () => {
    const person = await newPerson()
    const phone = await person.device('phone')
    const tablet = await person.device('tablet')
    await phone.sync()
    const id = await phone.create(table, spec.fields(1))
    const other = await phone.create(table, spec.fields(2))
    await phone.sync()
    await tablet.sync()
    await phone.edit(table, other, { [spec.text]: 'edited before the push' })
    // The push carries the edit; the deletion happens after its changes were read.
    await phone.sync({ beforePush: () => phone.remove(table, id) })
    await assertConverged(person, [phone, tablet], { [table]: [other] })
    assert.equal((await tablet.records(table))[other][spec.text], 'edited before the push')
  })

  test(`${table}: a deletion on one device wins over an edit on another`, async () => {
    const person = await newPerson()
    const phone = await person.device('phone')
    const tablet = await person.device('tablet')
    await phone.sync()
    const id = await phone.create(table, spec.fields(1))
    await phone.sync()
    await tablet.sync()

    // Deleted on the phone and synced; edited offline on the tablet, then synced.
    await phone.remove(table, id)
    await tablet.edit(table, id, { [spec.text]: 'edited offline' })
    await phone.sync()
    await tablet.sync()
    assert.deepEqual(Object.keys(await tablet.records(table)), [])
    await assertConverged(person, [phone, tablet], { [table]: [] })
  })

  test(`${table}: an edit synced before a deletion still ends deleted`, async () => {
    const person = await newPerson()
    const phone = await person.device('phone')
    const tablet = await person.device('tablet')
    await phone.sync()
    const id = await phone.create(table, spec.fields(1))
    await phone.sync()
    await tablet.sync()

    // Deleted offline on the phone; the tablet's edit reaches the server first. The
    // phone's pull then brings the edit of a record it deleted: it keeps its deletion
    // and pushes it.
    await phone.remove(table, id)
    await tablet.edit(table, id, { [spec.text]: 'edited and synced first' })
    await tablet.sync()
    await phone.sync()
    assert.deepEqual(Object.keys(await phone.records(table)), [])
    await assertConverged(person, [phone, tablet], { [table]: [] })
  })

  test(`${table}: an edit pushed across a deletion is refused, then the deletion wins`, async () => {
    const person = await newPerson()
    const phone = await person.device('phone')
    const tablet = await person.device('tablet')
    await phone.sync()
    const id = await phone.create(table, spec.fields(1))
    await phone.sync()
    await tablet.sync()

    // The tablet pulls, then, before its push of an edit lands, the phone deletes
    // the record and syncs. The server refuses the stale edit (409) and the
    // tablet's next sync applies the deletion.
    await tablet.edit(table, id, { [spec.text]: 'too late' })
    await assert.rejects(
      tablet.sync({
        beforePush: async () => {
          await phone.remove(table, id)
          await phone.sync()
        },
      }),
      (error) => error instanceof SyncRejected && error.status === 409,
    )
    await tablet.sync()
    assert.deepEqual(Object.keys(await tablet.records(table)), [])
    await assertConverged(person, [phone, tablet], { [table]: [] })
  })

  test(`${table}: a device that never saw a record takes its tombstone quietly`, async () => {
    const person = await newPerson()
    const phone = await person.device('phone')
    const tablet = await person.device('tablet')
    await phone.sync()
    await tablet.sync()
    const id = await phone.create(table, spec.fields(1))
    await phone.sync()
    await phone.remove(table, id)
    await phone.sync()
    // The tablet's pull carries the deletion of a record it never held.
    await tablet.sync()
    assert.deepEqual(Object.keys(await tablet.records(table)), [])
    await assertConverged(person, [phone, tablet], { [table]: [] })
  })
}

test('three devices creating, editing and deleting in a seeded random order converge, deletions winning', async () => {
  // A small deterministic generator, so a failure replays exactly.
  let seed = 20261201
  const random = (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed % n
  }
  const person = await newPerson()
  const devices = [await person.device('phone'), await person.device('tablet'), await person.device('web')]
  for (const device of devices) await device.sync()
  const deleted = new Set()
  const created = []
  let n = 0
  for (let step = 0; step < 120; step += 1) {
    const device = devices[random(devices.length)]
    const tables = Object.keys(TABLES)
    const table = tables[random(tables.length)]
    const held = Object.keys(await device.records(table))
    const action = random(10)
    if (action < 3 || held.length === 0) {
      n += 1
      created.push([table, await device.create(table, TABLES[table].fields(n))])
    } else if (action < 6) {
      await device.edit(table, held[random(held.length)], { [TABLES[table].text]: `edit ${step}` })
    } else if (action < 8) {
      const id = held[random(held.length)]
      await device.remove(table, id)
      deleted.add(`${table}/${id}`)
    } else {
      await device.sync()
    }
  }
  const expected = {}
  for (const table of Object.keys(TABLES)) {
    expected[table] = created.filter(([t, id]) => t === table && !deleted.has(`${t}/${id}`)).map(([, id]) => id)
  }
  const fresh = await assertConverged(person, devices, expected)
  // Not only the same ids: the same values everywhere.
  for (const table of Object.keys(TABLES)) {
    const want = await fresh.records(table)
    for (const device of devices) assert.deepEqual(await device.records(table), want, `${device.name}: ${table}`)
  }
})
