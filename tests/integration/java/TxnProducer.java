import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Kafka's Java producer in a transaction against a broker (tests/integration/test_transactions_java.py):
 * commits 6 records across 3 partitions, aborts 3, then a second instance with the same transactional.id
 * fences the first and commits offset 1 of partition 0 for GROUP with its record (sendOffsetsToTransaction).
 * Prints one line per step: "committed", "aborted", "fenced", "second committed" (or what went wrong).
 * Run as: java -cp 'LIB/*' TxnProducer.java BOOTSTRAP TOPIC TRANSACTIONAL_ID GROUP
 */
public class TxnProducer {
    static KafkaProducer<String, String> producer(String bootstrap, String tid) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("transactional.id", tid);
        p.put("transaction.timeout.ms", "60000");
        p.put("max.block.ms", "30000");
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        return new KafkaProducer<>(p);
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], tid = args[2], group = args[3];
        KafkaProducer<String, String> first = producer(bootstrap, tid);
        first.initTransactions();
        first.beginTransaction();
        for (int i = 0; i < 6; i++) first.send(new ProducerRecord<>(topic, i % 3, "k", "c" + i)).get();
        first.commitTransaction();
        System.out.println("committed");
        first.beginTransaction();
        for (int i = 0; i < 3; i++) first.send(new ProducerRecord<>(topic, i, "k", "a" + i)).get();
        first.abortTransaction();
        System.out.println("aborted");
        first.beginTransaction();
        first.send(new ProducerRecord<>(topic, 0, "k", "zombie")).get();
        KafkaProducer<String, String> second = producer(bootstrap, tid);
        second.initTransactions();
        try {
            first.commitTransaction();
            System.out.println("not fenced");
        } catch (ProducerFencedException | InvalidProducerEpochException e) {
            System.out.println("fenced");
        }
        first.close();
        second.beginTransaction();
        second.send(new ProducerRecord<>(topic, 1, "k", "second")).get();
        second.sendOffsetsToTransaction(
                Map.of(new TopicPartition(topic, 0), new OffsetAndMetadata(1)), new ConsumerGroupMetadata(group));
        second.commitTransaction();
        System.out.println("second committed");
        second.close();
    }
}
