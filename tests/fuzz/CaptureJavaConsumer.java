// A Java consumer for tests/fuzz/capture_corpus.py: seeks with a committed leader epoch,
// which the Java client validates with OffsetsForLeaderEpoch before fetching.
// Run as a single-file program: java -cp '<kafka-clients jars>' CaptureJavaConsumer.java BOOTSTRAP TOPIC

import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Properties;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class CaptureJavaConsumer {
    public static void main(String[] args) {
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        props.put("key.deserializer", ByteArrayDeserializer.class.getName());
        props.put("value.deserializer", ByteArrayDeserializer.class.getName());
        props.put("enable.auto.commit", "false");
        TopicPartition tp = new TopicPartition(args[1], 0);
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            consumer.assign(List.of(tp));
            consumer.seek(tp, new OffsetAndMetadata(1, Optional.of(0), ""));
            int got = 0;
            long deadline = System.currentTimeMillis() + 30_000;
            while (got < 3 && System.currentTimeMillis() < deadline) {
                got += consumer.poll(Duration.ofMillis(200)).count();
            }
            if (got < 3) {
                throw new IllegalStateException("read " + got + " records");
            }
        }
    }
}
