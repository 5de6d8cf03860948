'use strict'
// Partners through WatermelonDB's own `synchronize()`, with the app at sync
// schema version 2: `journal_entries.shared_with_partner` and the read-only
// `partner_items`, reached from version 1 by the app's own migration (as an
// app that upgrades ships it). What one person marks shared appears on the
// partner's devices, decrypted; unsharing, deleting, and unlinking take it
// away again; nothing else of either person ever reaches the other's device.
//
// Run by `cargo test -p attune-tests --test watermelon` beside scenarios.js.

const assert = require('node:assert/strict')
const { test } = require('node:test')
const { Model, appSchema, tableSchema } = require('@nozbe/watermelondb')
const { schemaMigrations, addColumns, createTable } = require('@nozbe/watermelondb/Schema/migrations')
const { hasUnsyncedChanges } = require('@nozbe/watermelondb/sync')
const client = require('./client')

const PARTNER_ITEM_COLUMNS = [
  { name: 'kind', type: 'string' },
  { name: 'boundary_kind', type: 'string', isOptional: true },
  { name: 'text', type: 'string' },
]

const SHARED_WITH_PARTNER = { name: 'shared_with_partner', type: 'boolean', isOptional: true }

// Version 2 of the app's schema: version 1 plus what partners need.
const COLUMNS_V2 = {
  ...client.COLUMNS_V1,
  journal_entries: [...client.COLUMNS_V1.journal_entries, SHARED_WITH_PARTNER],
  partner_items: PARTNER_ITEM_COLUMNS,
}
const schema = appSchema({
  version: 2,
  tables: Object.entries(COLUMNS_V2).map(([name, columns]) => tableSchema({ name, columns })),
})

const migrations = schemaMigrations({
  migrations: [
    {
      toVersion: 2,
      steps: [
        addColumns({ table: 'journal_entries', columns: [SHARED_WITH_PARTNER] }),
        createTable({ name: 'partner_items', columns: PARTNER_ITEM_COLUMNS }),
      ],
    },
  ],
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
class PartnerItem extends Model {
  static table = 'partner_items'
}

const APP = { schema, migrations, modelClasses: [Checkin, JournalEntry, Boundary, PartnerItem] }
const NOW = Date.UTC(2026, 10, 30, 20, 0, 0)

// Two people, linked (the first invites, the second accepts), each with a phone.
async function linkedCouple() {
  const ana = await client.newPerson(APP)
  const ben = await client.newPerson(APP)
  const anaPhone = await ana.device('ana phone')
  const benPhone = await ben.device('ben phone')
  const invitation = await client.api('POST', '/v1/partner/invitations', { token: anaPhone.token })
  assert.equal(invitation.status, 201, JSON.stringify(invitation.body))
  const accepted = await client.api('POST', `/v1/partner/invitations/${invitation.body.code}/accept`, {
    token: benPhone.token,
  })
  assert.equal(accepted.status, 201, JSON.stringify(accepted.body))
  return { ana, ben, anaPhone, benPhone }
}

// The partner items a device shows: text → {kind, boundary_kind}.
async function partnerItems(device) {
  const held = await device.records('partner_items')
  return Object.fromEntries(
    Object.values(held).map((item) => [item.text, { kind: item.kind, boundary_kind: item.boundary_kind }]),
  )
}

async function assertQuiet(...devices) {
  for (const device of devices) {
    assert.equal(await hasUnsyncedChanges({ database: device.db }), false, `${device.name} has unsynced changes`)
  }
}

test('what one person shares reaches the partner devices, decrypted, and leaves when unshared or deleted', async () => {
  const { ben, anaPhone, benPhone } = await linkedCouple()
  const shared = await anaPhone.create('boundaries', {
    kind: 'physical',
    text: 'ask before a hug',
    shared_with_partner: true,
    active: true,
  })
  await anaPhone.create('boundaries', { kind: 'emotional', text: 'mine alone', shared_with_partner: false, active: true })
  const entry = await anaPhone.create('journal_entries', {
    step: 3,
    body: 'what trust means to me',
    occurred_at: NOW,
    shared_with_partner: true,
  })
  await anaPhone.create('journal_entries', { step: 3, body: 'not for now', occurred_at: NOW + 1, shared_with_partner: false })
  await anaPhone.create('checkins', { occurred_at: NOW, mood: 2, anxiety: 8, comfort: 2, completed: false, note: 'hard' })
  await anaPhone.sync()

  await benPhone.sync()
  const benTablet = await ben.device('ben tablet')
  await benTablet.sync()
  for (const device of [benPhone, benTablet]) {
    assert.deepEqual(await partnerItems(device), {
      'ask before a hug': { kind: 'boundary', boundary_kind: 'physical' },
      'what trust means to me': { kind: 'journal_entry', boundary_kind: null },
    })
    // Nothing of Ana's own tables: only what she shared, as partner items.
    for (const table of ['checkins', 'journal_entries', 'boundaries']) {
      assert.deepEqual(await device.records(table), {}, `${device.name}: ${table}`)
    }
  }

  await anaPhone.edit('journal_entries', entry, { shared_with_partner: false })
  await anaPhone.remove('boundaries', shared)
  await anaPhone.sync()
  await benPhone.sync()
  await benTablet.sync()
  assert.deepEqual(await partnerItems(benPhone), {})
  assert.deepEqual(await partnerItems(benTablet), {})
  await assertQuiet(anaPhone, benPhone, benTablet)
})

test('each partner sees the other’s items, not their own, and unlinking takes every item away', async () => {
  const { anaPhone, benPhone } = await linkedCouple()
  await anaPhone.create('boundaries', { kind: 'emotional', text: 'from ana', shared_with_partner: true, active: true })
  await benPhone.create('journal_entries', { body: 'from ben', occurred_at: NOW, shared_with_partner: true })
  // Both push at once.
  await Promise.all([anaPhone.sync(), benPhone.sync()])
  await Promise.all([anaPhone.sync(), benPhone.sync()])
  assert.deepEqual(Object.keys(await partnerItems(anaPhone)), ['from ben'])
  assert.deepEqual(Object.keys(await partnerItems(benPhone)), ['from ana'])

  const unlinked = await client.api('DELETE', '/v1/partner', { token: benPhone.token })
  assert.equal(unlinked.status, 204)
  await anaPhone.sync()
  await benPhone.sync()
  assert.deepEqual(await partnerItems(anaPhone), {})
  assert.deepEqual(await partnerItems(benPhone), {})
  // Their own records stay theirs.
  assert.equal(Object.keys(await anaPhone.records('boundaries')).length, 1)
  assert.equal(Object.keys(await benPhone.records('journal_entries')).length, 1)
  await assertQuiet(anaPhone, benPhone)
})

test('a partner item edited on the device is refused by the server and stays as shared', async () => {
  const { ben, anaPhone, benPhone } = await linkedCouple()
  await anaPhone.create('boundaries', { kind: 'emotional', text: 'as written', shared_with_partner: true, active: true })
  await anaPhone.sync()
  await benPhone.sync()
  const [item] = Object.keys(await benPhone.records('partner_items'))
  await benPhone.edit('partner_items', item, { text: 'rewritten by ben' })
  await assert.rejects(
    benPhone.sync(),
    (error) => error instanceof client.SyncRejected && error.status === 422,
  )
  // A fresh device of Ben's holds what Ana wrote; a third person, nothing.
  const benTablet = await ben.device('ben tablet')
  await benTablet.sync()
  assert.deepEqual(Object.keys(await partnerItems(benTablet)), ['as written'])
  const stranger = await (await client.newPerson(APP)).device('stranger')
  await stranger.sync()
  assert.deepEqual(await partnerItems(stranger), {}, 'a third person sees nothing of the couple')
})
