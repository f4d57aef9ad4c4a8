// kafkajs's transactional producer and consumer against a broker (tests/integration/test_transactions_each_client.py):
// commits c0..c5 across 3 partitions, aborts a0..a2, leaves "zombie" open on partition 0, is fenced by a second
// producer with the same transactional id (its commit must fail), which commits s0..s2. Then reads the topic
// back with a read_committed and a read_uncommitted consumer (kafkajs's readUncommitted) and prints one JSON
// line: {"fenced": the first producer's commit error or null, "read_committed": {partition: [values]},
// "read_uncommitted": {...}}.
// Run as: node txn_fence.js BOOTSTRAP TOPIC TRANSACTIONAL_ID (kafkajs from compat/js: NODE_PATH)
const { Kafka, logLevel } = require("kafkajs");

async function read(kafka, topic, readUncommitted, expected) {
  const consumer = kafka.consumer({ groupId: `read-${Math.random().toString(16).slice(2)}`, readUncommitted });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const got = { 0: [], 1: [], 2: [] };
  let count = 0;
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out: ${JSON.stringify(got)}`)), 60000);
    consumer.run({
      eachMessage: async ({ partition, message }) => {
        got[partition].push(message.value.toString());
        if (++count >= expected) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  return got;
}

async function main() {
  const [bootstrap, topic, transactionalId] = process.argv.slice(2);
  const kafka = new Kafka({ brokers: bootstrap.split(","), logLevel: process.env.KJS_DEBUG ? logLevel.DEBUG : logLevel.NOTHING });
  const producer = () => kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 });
  const first = producer();
  await first.connect();
  let txn = await first.transaction();
  for (let i = 0; i < 6; i++) await txn.send({ topic, messages: [{ value: `c${i}`, partition: i % 3 }] });
  await txn.commit();
  txn = await first.transaction();
  for (let i = 0; i < 3; i++) await txn.send({ topic, messages: [{ value: `a${i}`, partition: i }] });
  await txn.abort();
  txn = await first.transaction();
  await txn.send({ topic, messages: [{ value: "zombie", partition: 0 }] });
  const second = producer();
  await second.connect();
  const txn2 = await second.transaction(); // InitProducerId with the same id: fences the first, aborting its txn
  let fenced = null;
  try {
    await txn.commit();
  } catch (err) {
    fenced = err.type || err.name || String(err);
  }
  await first.disconnect();
  for (let i = 0; i < 3; i++) await txn2.send({ topic, messages: [{ value: `s${i}`, partition: i }] });
  await txn2.commit();
  await second.disconnect();
  const committed = await read(kafka, topic, false, 9);
  const uncommitted = await read(kafka, topic, true, 13);
  console.log(JSON.stringify({ fenced, read_committed: committed, read_uncommitted: uncommitted }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
