import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * Kafka's Java consumer reading a topic's 3 partitions from the beginning to their end with an isolation level
 * (tests/integration/test_transactions_java.py). The end is what endOffsets answers for that level (the last
 * stable offset for read_committed). Prints "PARTITION<TAB>VALUE" per record, in each partition's order.
 * Run as: java -cp 'LIB/*' TxnRead.java BOOTSTRAP TOPIC read_committed|read_uncommitted
 */
public class TxnRead {
    public static void main(String[] args) {
        Properties p = new Properties();
        p.put("bootstrap.servers", args[0]);
        p.put("isolation.level", args[2]);
        p.put("enable.auto.commit", "false");
        p.put("key.deserializer", StringDeserializer.class.getName());
        p.put("value.deserializer", StringDeserializer.class.getName());
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p)) {
            List<TopicPartition> partitions = List.of(
                    new TopicPartition(args[1], 0), new TopicPartition(args[1], 1), new TopicPartition(args[1], 2));
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            Map<TopicPartition, Long> end = consumer.endOffsets(partitions);
            long deadline = System.currentTimeMillis() + 60_000;
            while (partitions.stream().anyMatch(tp -> consumer.position(tp) < end.get(tp))) {
                if (System.currentTimeMillis() > deadline) throw new IllegalStateException("not at the end in 60 s");
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    System.out.println(r.partition() + "\t" + r.value());
                }
            }
        }
    }
}
