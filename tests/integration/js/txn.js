// kafkajs's transactional producer against a broker (tests/integration/test_transactions_clients.py):
// commits 6 records across 3 partitions, aborts 3, commits offset 1 of partition 0 for GROUP with
// sendOffsets. Prints "done" when everything was acknowledged.
// Run as: node txn.js BOOTSTRAP TOPIC TRANSACTIONAL_ID GROUP (kafkajs from compat/js: NODE_PATH)
const { Kafka, logLevel } = require("kafkajs");

async function main() {
  const [bootstrap, topic, transactionalId, group] = process.argv.slice(2);
  const kafka = new Kafka({ brokers: bootstrap.split(","), logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  let txn = await producer.transaction();
  for (let i = 0; i < 6; i++) {
    await txn.send({ topic, messages: [{ value: `c${i}`, partition: i % 3 }] });
  }
  await txn.sendOffsets({ consumerGroupId: group, topics: [{ topic, partitions: [{ partition: 0, offset: "1" }] }] });
  await txn.commit();
  txn = await producer.transaction();
  for (let i = 0; i < 3; i++) {
    await txn.send({ topic, messages: [{ value: `a${i}`, partition: i }] });
  }
  await txn.abort();
  await producer.disconnect();
  console.log("done");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
