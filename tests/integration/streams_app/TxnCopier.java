// Consume-transform-produce with Kafka's Java clients, for tests/integration/test_transactions_eos.py: reads
// INPUT (read_committed, group GROUP), writes each record's value upper-cased to OUTPUT keyed by where it came
// from ("partition:offset"), and commits the consumed offsets in the same transaction
// (sendOffsetsToTransaction with the consumer's group metadata), at most 5 records a transaction.
//
//   java TxnCopier BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID STOP_AFTER
//
// Prints "committed N" (N records so far) after each commit. With STOP_AFTER >= 0, once N reaches it the
// next transaction is written (sent and flushed) but not committed: "open" is printed and the process waits
// to be killed. Otherwise it runs until killed.
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class TxnCopier {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], input = args[1], output = args[2], group = args[3], tid = args[4];
        long stopAfter = Long.parseLong(args[5]);
        Properties c = new Properties();
        c.put("bootstrap.servers", bootstrap);
        c.put("group.id", group);
        c.put("isolation.level", "read_committed");
        c.put("enable.auto.commit", "false");
        c.put("auto.offset.reset", "earliest");
        c.put("max.poll.records", "5");
        c.put("session.timeout.ms", "6000");  // a killed instance leaves the group soon
        c.put("key.deserializer", StringDeserializer.class.getName());
        c.put("value.deserializer", StringDeserializer.class.getName());
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("transactional.id", tid);
        p.put("transaction.timeout.ms", "60000");
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c);
             KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            producer.initTransactions();
            consumer.subscribe(List.of(input));
            long done = 0;
            while (true) {
                ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(200));
                if (records.isEmpty()) continue;
                producer.beginTransaction();
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                for (ConsumerRecord<String, String> r : records) {
                    String where = r.partition() + ":" + r.offset();
                    producer.send(new ProducerRecord<>(output, r.partition(), where, r.value().toUpperCase()));
                    offsets.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                }
                producer.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
                done += records.count();
                if (stopAfter >= 0 && done >= stopAfter) {
                    producer.flush();
                    System.out.println("open");
                    System.out.flush();
                    Thread.sleep(Long.MAX_VALUE);  // killed here, the transaction open
                }
                producer.commitTransaction();
                System.out.println("committed " + done);
                System.out.flush();
            }
        }
    }
}
