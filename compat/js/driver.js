#!/usr/bin/env node
// The kafkajs leg of kstub's compatibility suite: one primitive operation per run.
//
//   node driver.js OPERATION 'JSON ARGS'
//
// prints one JSON line on stdout: {"ok": true, "result": ...} or
// {"ok": false, "error": {"kind": ..., "message": ...}} (kind is Kafka's error name where kafkajs
// gives one, TIMEOUT, or UNSUPPORTED). Keys, values and header values travel as base64 (null stays
// null). The "member" operation runs until its stdin closes, printing one JSON event per line:
// {"event": "assigned", "partitions": [...]}, {"event": "records", "records": [...]}, {"event": "closed"}.
// kafkajs's own log lines go to stderr.
'use strict'

const { Kafka, CompressionTypes, Partitioners, logLevel } = require('kafkajs')

const [, , operation, rawArgs] = process.argv
const args = JSON.parse(rawArgs || '{}')
const timeoutMs = args.timeoutMs || 15000

const kafka = new Kafka({
  clientId: 'kstub-compat',
  brokers: args.bootstrap.split(','),
  connectionTimeout: 5000,
  requestTimeout: timeoutMs,
  retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2000 },
  logLevel: logLevel.WARN,
  logCreator: () => ({ namespace, level, label, log }) => {
    process.stderr.write(`${label} [${namespace}] ${log.message} ${JSON.stringify(log)}\n`)
  },
})

const b64 = buf => (buf === null || buf === undefined ? null : Buffer.from(buf).toString('base64'))
const unb64 = text => (text === null || text === undefined ? null : Buffer.from(text, 'base64'))

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

class Unsupported extends Error {}

function errorKind(err) {
  if (err instanceof Unsupported) return 'UNSUPPORTED'
  for (let e = err; e; e = e.originalError || e.cause) {
    if (e.type && e.type !== 'UNKNOWN') return e.type
    if (e.name === 'KafkaJSTimeout' || e.name === 'KafkaJSRequestTimeoutError') return 'TIMEOUT'
  }
  return err.name || 'ERROR'
}

function withDeadline(promise, ms, what) {
  let timer
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => {
      const e = new Error(`${what} did not finish within ${ms} ms`)
      e.name = 'KafkaJSTimeout'
      reject(e)
    }, ms)
  })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}

function recordOf(partition, m) {
  const headers = []
  for (const [k, v] of Object.entries(m.headers || {})) {
    for (const one of Array.isArray(v) ? v : [v]) headers.push([k, b64(one)])
  }
  return {
    partition,
    offset: Number(m.offset),
    key: b64(m.key),
    value: b64(m.value),
    headers,
    timestamp: Number(m.timestamp),
  }
}

const CODECS = { gzip: CompressionTypes.GZIP }

async function produceWith(producer, topic, messages, opts, chosen) {
  const acks = opts.acks === 'all' ? -1 : Number(opts.acks ?? -1)
  let compression = CompressionTypes.None
  if (opts.compression) {
    compression = CODECS[opts.compression]
    if (compression === undefined) {
      throw new Unsupported(`kafkajs ships only gzip; ${opts.compression} needs a codec package`)
    }
  }
  const kmsgs = messages.map(m => {
    const km = { key: unb64(m.key), value: unb64(m.value) }
    if (m.partition !== null && m.partition !== undefined) km.partition = m.partition
    if (m.timestamp !== null && m.timestamp !== undefined) km.timestamp = String(m.timestamp)
    if (m.headers && m.headers.length) {
      km.headers = {}
      for (const [k, v] of m.headers) {
        const value = unb64(v)
        if (k in km.headers) {
          km.headers[k] = [].concat(km.headers[k], [value])
        } else {
          km.headers[k] = value
        }
      }
    }
    return km
  })
  const deliveries = []
  const groups = opts.flushEach ? kmsgs.map(m => [m]) : [kmsgs]
  for (const group of groups) {
    const result = await producer.send({ topic, messages: group, acks, compression, timeout: timeoutMs })
    const base = new Map(result.map(r => [r.partition, Number(r.baseOffset)]))
    const next = new Map()
    for (const km of group) {
      const p = chosen.get(km)
      const k = next.get(p) || 0
      next.set(p, k + 1)
      deliveries.push({ partition: p, offset: base.get(p) + k })
    }
  }
  return deliveries
}

// The default (Java-compatible) partitioner, remembering which partition it gave each message.
function recordingPartitioner(chosen) {
  return () => {
    const inner = Partitioners.DefaultPartitioner()
    return params => {
      const p = inner(params)
      chosen.set(params.message, p)
      return p
    }
  }
}

async function withProducer(opts, body) {
  const chosen = new Map()
  const producer = kafka.producer({
    createPartitioner: recordingPartitioner(chosen),
    idempotent: !!opts.idempotent,
    maxInFlightRequests: opts.idempotent ? 1 : undefined,
    allowAutoTopicCreation: true,
  })
  await producer.connect()
  try {
    return await body(producer, chosen)
  } finally {
    await producer.disconnect()
  }
}

async function withAdmin(body) {
  const admin = kafka.admin()
  await admin.connect()
  try {
    return await body(admin)
  } finally {
    await admin.disconnect()
  }
}

function consumerOf(group) {
  return kafka.consumer({
    groupId: group,
    sessionTimeout: 10000,
    heartbeatInterval: 500,
    rebalanceTimeout: 15000,
    maxWaitTimeInMs: 100,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2000 },
  })
}

// Run a group consumer until `done(records)` says so or the deadline passes; returns the records.
async function consumeInGroup(group, topic, { fromBeginning, starts, onFetch, enough }) {
  const consumer = consumerOf(group)
  const got = []
  let finish
  const finished = new Promise(resolve => {
    finish = resolve
  })
  let joined = false
  let fetchedAfterJoin = false
  consumer.on(consumer.events.GROUP_JOIN, () => {
    joined = true
  })
  consumer.on(consumer.events.FETCH, async () => {
    if (joined && !fetchedAfterJoin) {
      fetchedAfterJoin = true
      if (onFetch) {
        try {
          await onFetch()
        } catch (e) {
          finish(e)
        }
      }
    }
  })
  consumer.on(consumer.events.CRASH, e => finish(e.payload.error))
  await consumer.connect()
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        if (got.length < enough) got.push(recordOf(partition, message))
        if (got.length >= enough) finish(null)
      },
    })
    if (starts) {
      for (const [p, offset] of Object.entries(starts)) {
        consumer.seek({ topic, partition: Number(p), offset: String(offset) })
      }
    }
    if (enough === 0) finish(null)
    const timer = setTimeout(() => finish(null), timeoutMs)
    const err = await finished
    clearTimeout(timer)
    if (err) throw err
    return { consumer, got }
  } catch (e) {
    await consumer.disconnect()
    throw e
  }
}

async function commitExactly(consumer, topic, records) {
  const last = new Map()
  for (const r of records) last.set(r.partition, Math.max(last.get(r.partition) ?? -1, r.offset))
  if (last.size) {
    await consumer.commitOffsets(
      [...last].map(([partition, offset]) => ({ topic, partition, offset: String(offset + 1) }))
    )
  }
}

const operations = {
  async metadata({ topics }) {
    return withAdmin(async admin => {
      const cluster = await admin.describeCluster()
      const meta = await admin.fetchTopicMetadata({ topics })
      return {
        brokers: cluster.brokers.map(b => [b.nodeId, b.host, b.port]),
        topics: Object.fromEntries(
          meta.topics.map(t => [
            t.name,
            t.partitions.map(p => ({ partition: p.partitionId, leader: p.leader, replicas: p.replicas, isr: p.isr })),
          ])
        ),
      }
    })
  },

  async create_topic({ topic, partitions, replicationFactor }) {
    return withAdmin(async admin => {
      const created = await admin.createTopics({
        topics: [{ topic, numPartitions: partitions, replicationFactor }],
        waitForLeaders: true,
        timeout: timeoutMs,
      })
      if (!created) {
        const e = new Error(`kafkajs createTopics returned false: topic ${topic} already exists`)
        e.type = 'TOPIC_ALREADY_EXISTS'
        throw e
      }
      return null
    })
  },

  async produce({ topic, messages, ...opts }) {
    return withProducer(opts, (producer, chosen) => produceWith(producer, topic, messages, opts, chosen))
  },

  async consume({ topic, starts, count, group }) {
    const { consumer, got } = await consumeInGroup(group, topic, { fromBeginning: true, starts, enough: count })
    await consumer.disconnect()
    return got
  },

  async group_consume({ group, topic, count, reset }) {
    const { consumer, got } = await consumeInGroup(group, topic, {
      fromBeginning: reset === 'earliest',
      enough: count,
    })
    try {
      await commitExactly(consumer, topic, got)
    } finally {
      await consumer.disconnect()
    }
    return got
  },

  async consume_new({ group, topic, messages }) {
    // The first completed fetch after joining comes after the reset to latest has set the position.
    const { consumer, got } = await consumeInGroup(group, topic, {
      fromBeginning: false,
      enough: messages.length,
      onFetch: () => withProducer({}, (producer, chosen) => produceWith(producer, topic, messages, {}, chosen)),
    })
    await consumer.disconnect()
    return got
  },

  async offsets_for_times({ topic, times }) {
    return withAdmin(async admin => {
      const out = {}
      for (const [p, ts] of Object.entries(times)) {
        const found = await admin.fetchTopicOffsetsByTimestamp(topic, ts)
        const entry = found.find(o => o.partition === Number(p))
        out[p] = entry ? Number(entry.offset) : null
      }
      return out
    })
  },

  async member({ group, topic }) {
    const consumer = consumerOf(group)
    consumer.on(consumer.events.GROUP_JOIN, e => {
      emit({ event: 'assigned', partitions: e.payload.memberAssignment[topic] || [] })
    })
    consumer.on(consumer.events.CRASH, e => emit({ event: 'error', message: String(e.payload.error) }))
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const records = batch.messages.map(m => recordOf(batch.partition, m))
        await commitExactly(consumer, topic, records)
        if (records.length) emit({ event: 'records', records })
      },
    })
    await new Promise(resolve => {
      process.stdin.on('end', resolve)
      process.stdin.on('close', resolve)
      process.stdin.resume()
    })
    await consumer.disconnect()
    emit({ event: 'closed' })
    return undefined
  },
}

async function main() {
  const op = operations[operation]
  if (!op) {
    emit({ ok: false, error: { kind: 'UNSUPPORTED', message: `unknown operation ${operation}` } })
    return 2
  }
  try {
    const result = await withDeadline(op(args), operation === 'member' ? 2 ** 31 - 1 : timeoutMs * 3, operation)
    if (operation !== 'member') emit({ ok: true, result })
    return 0
  } catch (err) {
    emit({ ok: false, error: { kind: errorKind(err), message: String(err && err.stack ? err.stack : err) } })
    return 1
  }
}

main().then(code => process.exit(code))
